import { type Kysely, sql } from "kysely";
import { StoreError } from "../errors.js";
import type { Database } from "./database.js";
import type { ExpectedSchema } from "./expected-schema.js";
import type { SchemaInspection } from "./schema-inspection.js";

/** One way schema `strata` differs from what its applied migrations made. */
export interface SchemaProblem {
  /** `table strata.runs is missing`, `column strata.runs.error has type integer, not text`. */
  readonly message: string;
  /** Whether `strata db migrate` can put it back (recreating from the migrations). */
  readonly repairable: boolean;
  /** Follows from another problem (an index of a missing table): not worth a mention. */
  readonly implied?: boolean;
  /** What recreates it, for repairable problems; run in this order. */
  readonly repair?: { readonly statement: string; readonly order: number; readonly what: string };
}

/**
 * Compares what the catalog shows with what the applied migrations made: missing tables,
 * columns, views and indexes (repairable), and columns of another type or a table replaced by
 * something else (not). Tables, columns and indexes added by users are not problems.
 *
 * @example
 * const problems = schemaProblems(await inspectSchema(db), expectedSchema(applied));
 */
export function schemaProblems(
  seen: SchemaInspection,
  expected: ExpectedSchema,
): ReadonlyArray<SchemaProblem> {
  const problems: SchemaProblem[] = [];
  const missingTables = new Set<string>();
  for (const table of expected.tables.values()) {
    const actual = seen.relations.get(table.name);
    const name = `strata.${table.name}`;
    if (actual === undefined) {
      missingTables.add(table.name);
      problems.push({
        message: `table ${name} is missing`,
        repairable: true,
        repair: { statement: table.create, order: table.order, what: `table ${name} (empty)` },
      });
      continue;
    }
    if (actual.kind !== "table") {
      problems.push({ message: `${name} is no longer a table`, repairable: false });
      continue;
    }
    for (const column of table.columns) {
      const type = actual.columns.get(column.name);
      const columnName = `${name}.${column.name}`;
      if (type === undefined) {
        problems.push({
          message: `column ${columnName} is missing`,
          repairable: true,
          repair: {
            statement: `alter table ${name} add column ${column.definition}`,
            order: table.order + 0.5,
            what: `column ${columnName}`,
          },
        });
      } else if (column.type !== null && type !== column.type) {
        problems.push({
          message: `column ${columnName} has type ${type}, not ${column.type}`,
          repairable: false,
        });
      }
    }
  }
  for (const index of expected.indexes.values()) {
    if (seen.indexes.has(index.name) || !expected.tables.has(index.table)) continue;
    problems.push({
      message: `index strata.${index.name} is missing`,
      repairable: true,
      implied: missingTables.has(index.table),
      repair: { statement: index.create, order: index.order, what: `index strata.${index.name}` },
    });
  }
  for (const view of expected.views.values()) {
    const actual = seen.relations.get(view.name);
    if (actual !== undefined && actual.kind !== "view") {
      problems.push({ message: `strata.${view.name} is no longer a view`, repairable: false });
    } else if (actual === undefined) {
      problems.push({
        message: `view strata.${view.name} is missing`,
        repairable: true,
        repair: { statement: view.create, order: view.order, what: `view strata.${view.name}` },
      });
    }
  }
  return problems;
}

/**
 * The error every command gives on a schema changed after migration: what changed (the first
 * few) and that `strata db migrate` repairs it, or what it cannot repair.
 */
export function schemaDriftError(problems: ReadonlyArray<SchemaProblem>): StoreError {
  const worth = problems.filter((p) => p.implied !== true);
  const shown = worth.slice(0, 3).map((p) => p.message);
  const more = worth.length > shown.length ? ` (and ${worth.length - shown.length} more)` : "";
  const broken = problems.filter((p) => !p.repairable);
  const fix =
    broken.length === 0
      ? `run "strata db migrate" to recreate what is missing from the migrations`
      : broken.length === problems.length
        ? "strata cannot undo this: change it back by hand or restore a backup"
        : `run "strata db migrate" to recreate what is missing; it cannot undo ${broken.map((p) => p.message).join(", ")}: change that back by hand or restore a backup`;
  return new StoreError(
    "schema_drift",
    `schema strata was changed after it was migrated: ${shown.join(", ")}${more}; ${fix}`,
  );
}

/**
 * Refuses a role that cannot read strata's schema, naming the rights it lacks and the grant
 * that gives them. Writes are not required here: a read-only role may still run `costs`.
 */
export function assertSchemaReadable(seen: SchemaInspection, expected: ExpectedSchema): void {
  if (!seen.schemaExists) return;
  const lacks: string[] = [];
  if (!seen.usageOnSchema) lacks.push("USAGE on schema strata");
  const unreadable = [...seen.relations.values()]
    .filter((r) => !r.canSelect && (r.name === "migrations" || expected.tables.has(r.name)))
    .map((r) => `strata.${r.name}`);
  const readable = [...seen.relations.values()].some((r) => r.canSelect);
  if (unreadable.length > 0) {
    lacks.push(readable ? `SELECT on ${unreadable.join(", ")}` : "SELECT on its tables");
  }
  if (lacks.length === 0) return;
  throw new StoreError(
    "db_permission",
    `the database role "${seen.role}" lacks ${lacks.join(" and ")}; ${grantHint(seen.role)}`,
  );
}

/**
 * Refuses pending migrations the role has no right to apply: creating schema `strata` needs
 * CREATE on the database, creating tables in it CREATE on the schema.
 */
export function assertCanMigrate(seen: SchemaInspection, pending: ReadonlyArray<string>): void {
  const needed = seen.schemaExists
    ? seen.createOnSchema
      ? null
      : "CREATE on schema strata"
    : seen.createOnDatabase
      ? null
      : `CREATE on database "${seen.database}"`;
  if (needed === null) return;
  throw new StoreError(
    "db_permission",
    `the database role "${seen.role}" lacks ${needed}, which applying ${pending.join(", ")} needs; run "strata db migrate" once as a role that has it (the database owner), or grant it: grant create on ${seen.schemaExists ? "schema strata" : `database ${ident(seen.database)}`} to ${ident(seen.role)}`,
  );
}

/** The Postgres "insufficient privilege" error (SQLSTATE 42501) among `error` and its causes. */
export function deniedCause(error: unknown): Error | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 10; depth++) {
    if ((e as { code?: unknown }).code === "42501") return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * A Postgres "insufficient privilege" error anywhere in `error`'s causes, as a `db_permission`
 * error saying what was refused and which grants strata needs.
 *
 * @example
 * const denied = permissionError(error, { role: "analyst" }); if (denied) throw denied;
 */
export function permissionError(
  error: unknown,
  target: { readonly role?: string | undefined; readonly database?: string | undefined } = {},
): StoreError | undefined {
  const denied = deniedCause(error);
  if (denied === undefined) return undefined;
  const role = target.role || undefined;
  const who = role === undefined ? "the database role" : `the database role "${role}"`;
  // `runs prune` works in temporary tables: that right is the database's, not the schema's
  const hint = /temporary/i.test(denied.message)
    ? `grant it with: grant temporary on database ${ident(target.database || "DATABASE")} to ${ident(role ?? "ROLE")}`
    : grantHint(role ?? "ROLE");
  return new StoreError(
    "db_permission",
    `${who} may not do what this command needs (${denied.message}); ${hint}`,
    { cause: denied },
  );
}

/**
 * Recreates what `problems` found missing, in the order the migrations created it, each in its
 * own transaction; returns what was recreated and what could not be, with the reason.
 *
 * @example
 * const { repaired, failed } = await repairSchema(db, problems);
 */
export async function repairSchema(
  db: Kysely<Database>,
  problems: ReadonlyArray<SchemaProblem>,
): Promise<{ readonly repaired: ReadonlyArray<string>; readonly failed: ReadonlyArray<string> }> {
  const repairs = problems
    .flatMap((p) => (p.repair === undefined ? [] : [p.repair]))
    .sort((a, b) => a.order - b.order);
  const repaired: string[] = [];
  const failed: string[] = [];
  for (const repair of repairs) {
    try {
      await db.transaction().execute((trx) => sql.raw(repair.statement).execute(trx));
      repaired.push(repair.what);
    } catch (error) {
      failed.push(`${repair.what}: ${(error as Error).message}`);
    }
  }
  return { repaired, failed };
}

function grantHint(role: string): string {
  const who = ident(role);
  return `an owner of the schema can grant what strata needs: grant usage on schema strata to ${who}; grant select, insert, update, delete on all tables in schema strata to ${who}`;
}

function ident(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}
