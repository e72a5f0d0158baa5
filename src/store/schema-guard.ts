import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";
import { type ExpectedSchema, expectedSchema } from "./expected-schema.js";
import {
  MIGRATIONS_TABLE_DDL,
  type MigrationFile,
  type MigrationState,
  migrate,
  migrationStatus,
  readMigrations,
} from "./migrator.js";
import {
  assertSchemaReadable,
  repairSchema,
  type SchemaProblem,
  schemaDriftError,
  schemaProblems,
} from "./schema-check.js";
import { inspectSchema, type SchemaInspection } from "./schema-inspection.js";

const LOST_RECORD: SchemaProblem = {
  message: "table strata.migrations, the record of applied migrations, is missing",
  repairable: true,
};

/**
 * What every command does on opening the store: checks that the role may read schema `strata`,
 * applies pending migrations, and refuses a schema whose tables, columns, views or indexes were
 * dropped or altered since, saying to run `strata db migrate`. One catalog query when nothing
 * is pending.
 *
 * @throws StoreError `db_permission` naming the missing right, `schema_drift` naming the change.
 * @example
 * await prepareSchema(store.db);
 */
export async function prepareSchema(db: Kysely<Database>): Promise<void> {
  const files = await readMigrations();
  const expected = expectedSchema(files);
  let seen = await inspectSchema(db);
  assertSchemaReadable(seen, expected);
  if (lostRecord(seen, expected)) throw schemaDriftError([LOST_RECORD]);
  const { applied } = await migrate(db, files);
  let problems = schemaProblems(seen, expected);
  // Look again before refusing: another process may have been migrating when we first looked.
  if (problems.length > 0 || applied.length > 0) {
    seen = await inspectSchema(db);
    problems = schemaProblems(seen, expected);
  }
  if (problems.length > 0) throw schemaDriftError(problems);
}

/**
 * `strata db status`: the migrations' states and how the schema differs from what the applied
 * ones made, without changing anything.
 *
 * @example
 * const { migrations, problems } = await schemaStatus(store.db);
 */
export async function schemaStatus(db: Kysely<Database>): Promise<{
  readonly migrations: ReadonlyArray<MigrationState>;
  readonly problems: ReadonlyArray<SchemaProblem>;
}> {
  const files = await readMigrations();
  const seen = await inspectSchema(db);
  const all = expectedSchema(files);
  assertSchemaReadable(seen, all);
  if (lostRecord(seen, all)) {
    return {
      migrations: files.map((f) => ({ name: f.name, status: "pending", appliedAt: null })),
      problems: [LOST_RECORD],
    };
  }
  const migrations = await migrationStatus(db, files);
  const applied = new Set(migrations.filter((m) => m.status === "applied").map((m) => m.name));
  const expected = expectedSchema(files.filter((f) => applied.has(f.name)));
  const problems = schemaProblems(seen, expected);
  // looked before reading the record: a migration may have committed in between
  if (problems.length === 0) return { migrations, problems };
  return { migrations, problems: schemaProblems(await inspectSchema(db), expected) };
}

/** What `strata db migrate` did. */
export interface MigrateResult {
  readonly applied: ReadonlyArray<string>;
  /** Migrations re-recorded as applied after `strata.migrations` was dropped. */
  readonly rerecorded: ReadonlyArray<string>;
  /** `table strata.runs (empty)`, `column strata.runs.error`, ... */
  readonly repaired: ReadonlyArray<string>;
  /** What could not be repaired, and why. */
  readonly unrepaired: ReadonlyArray<string>;
}

/**
 * `strata db migrate`: applies pending migrations, then recreates from the migrations what was
 * dropped since (tables come back empty), and reports what it cannot put back (a column whose
 * type was changed). A dropped `strata.migrations` is rebuilt from the objects that exist.
 *
 * @example
 * const { applied, repaired, unrepaired } = await migrateAndRepair(store.db);
 */
export async function migrateAndRepair(db: Kysely<Database>): Promise<MigrateResult> {
  const files = await readMigrations();
  const expected = expectedSchema(files);
  let seen = await inspectSchema(db);
  assertSchemaReadable(seen, expected);
  const rerecorded = lostRecord(seen, expected) ? await rerecord(db, files, seen) : [];
  const { applied } = await migrate(db, files);
  seen = await inspectSchema(db);
  const problems = schemaProblems(seen, expected);
  const { repaired, failed } = await repairSchema(db, problems);
  const unrepaired = [...problems.filter((p) => !p.repairable).map((p) => p.message), ...failed];
  return { applied, rerecorded, repaired, unrepaired };
}

/** Schema `strata` holds strata's tables but no record of the migrations that made them. */
function lostRecord(seen: SchemaInspection, expected: ExpectedSchema): boolean {
  if (!seen.schemaExists || seen.relations.has("migrations")) return false;
  return [...expected.tables.keys()].some((name) => seen.relations.has(name));
}

/**
 * Recreates `strata.migrations` and records as applied every migration up to the last one
 * whose tables, views or indexes exist; later ones are applied as pending.
 */
async function rerecord(
  db: Kysely<Database>,
  files: ReadonlyArray<MigrationFile>,
  seen: SchemaInspection,
): Promise<ReadonlyArray<string>> {
  let last = -1;
  files.forEach((file, i) => {
    const made = expectedSchema([file]);
    const names = [...made.tables.keys(), ...made.views.keys()];
    if (
      names.some((n) => seen.relations.has(n)) ||
      [...made.indexes.keys()].some((n) => seen.indexes.has(n)) ||
      addedColumns(files, i).some(([table, column]) =>
        seen.relations.get(table)?.columns.has(column),
      )
    ) {
      last = i;
    }
  });
  const done = files.slice(0, last + 1);
  await db.transaction().execute(async (trx) => {
    await sql.raw(MIGRATIONS_TABLE_DDL).execute(trx);
    for (const file of done) {
      await trx
        .insertInto("strata.migrations")
        .values({ name: file.name, checksum: file.checksum })
        .onConflict((oc) => oc.column("name").doNothing())
        .execute();
    }
  });
  return done.map((f) => f.name);
}

/** The columns migration `i` adds to tables made by earlier ones: `[table, column]` pairs. */
function addedColumns(
  files: ReadonlyArray<MigrationFile>,
  i: number,
): ReadonlyArray<readonly [string, string]> {
  const before = expectedSchema(files.slice(0, i)).tables;
  const added: Array<readonly [string, string]> = [];
  for (const [name, table] of expectedSchema(files.slice(0, i + 1)).tables) {
    const had = before.get(name);
    if (had === undefined) continue;
    for (const column of table.columns) {
      if (!had.columns.some((c) => c.name === column.name)) added.push([name, column.name]);
    }
  }
  return added;
}
