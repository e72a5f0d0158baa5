import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { type Kysely, sql } from "kysely";
import { StoreError } from "../errors.js";
import type { Database } from "./database.js";
import { assertCanMigrate, deniedCause } from "./schema-check.js";
import { inspectSchema } from "./schema-inspection.js";

/** The folder holding the numbered SQL migrations shipped with strata. */
export const MIGRATIONS_DIR = fileURLToPath(new URL("../../migrations/", import.meta.url));

/** Creates schema `strata` and its record of applied migrations, when missing. */
export const MIGRATIONS_TABLE_DDL = `create schema if not exists strata;
  create table if not exists strata.migrations (
    name text primary key,
    checksum text not null,
    applied_at timestamptz not null default now()
  )`;

// Any fixed 64-bit number; two processes migrating one server serialize on it.
const MIGRATION_LOCK_ID = 7_315_204_881;

/** One migration file. */
export interface MigrationFile {
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

/** A migration's state in one database. */
export interface MigrationState {
  readonly name: string;
  /** `missing`: recorded as applied, but the file is not shipped with this version of strata. */
  readonly status: "applied" | "pending" | "missing";
  readonly appliedAt: Date | null;
}

/**
 * Reads the migration files in name order (`0001_init.sql`, `0002_...`).
 *
 * @example
 * const files = await readMigrations();
 */
export async function readMigrations(dir = MIGRATIONS_DIR): Promise<ReadonlyArray<MigrationFile>> {
  const names = (await readdir(dir)).filter((n) => /^\d{4}_[a-z0-9_]+\.sql$/.test(n)).sort();
  return Promise.all(
    names.map(async (name) => {
      const text = await readFile(`${dir}/${name}`, "utf8");
      return { name, sql: text, checksum: createHash("sha256").update(text).digest("hex") };
    }),
  );
}

/**
 * Lists applied and pending migrations; an applied file whose content changed is an error
 * naming the file.
 *
 * @example
 * for (const m of await migrationStatus(db)) console.log(m.name, m.status);
 */
export async function migrationStatus(
  db: Kysely<Database>,
  files?: ReadonlyArray<MigrationFile>,
): Promise<ReadonlyArray<MigrationState>> {
  const all = files ?? (await readMigrations());
  const applied = await readApplied(db);
  const states: MigrationState[] = [];
  for (const file of all) {
    const row = applied.get(file.name);
    if (row !== undefined) checkChecksum(file, row.checksum);
    states.push({
      name: file.name,
      status: row === undefined ? "pending" : "applied",
      appliedAt: row?.applied_at ?? null,
    });
  }
  for (const [name, row] of applied) {
    if (!all.some((f) => f.name === name)) {
      states.push({ name, status: "missing", appliedAt: row.applied_at });
    }
  }
  return states;
}

/**
 * Applies every pending migration in order, each in its own transaction, and returns the names
 * applied. Safe to run from several processes at once: they serialize on an advisory lock and
 * re-check inside it, so each migration is applied exactly once.
 *
 * @example
 * const { applied } = await migrate(db); // [] when already up to date
 */
export async function migrate(
  db: Kysely<Database>,
  files?: ReadonlyArray<MigrationFile>,
): Promise<{ readonly applied: ReadonlyArray<string> }> {
  const all = files ?? (await readMigrations());
  const before = await readApplied(db);
  for (const file of all) {
    const row = before.get(file.name);
    if (row !== undefined) checkChecksum(file, row.checksum);
  }
  const pending = all.filter((f) => !before.has(f.name)).map((f) => f.name);
  if (pending.length === 0) return { applied: [] };
  assertCanMigrate(await inspectSchema(db), pending);

  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`.execute(trx);
    await sql.raw(MIGRATIONS_TABLE_DDL).execute(trx);
  });

  const applied: string[] = [];
  for (const file of all) {
    if (before.has(file.name)) continue;
    const ran = await db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`.execute(trx);
      const existing = await trx
        .selectFrom("strata.migrations")
        .select("checksum")
        .where("name", "=", file.name)
        .executeTakeFirst();
      if (existing !== undefined) {
        checkChecksum(file, existing.checksum);
        return false; // another process applied it while we waited for the lock
      }
      try {
        await sql.raw(file.sql).execute(trx);
      } catch (error) {
        const denied = deniedCause(error);
        if (denied !== undefined) {
          throw new StoreError(
            "db_permission",
            `migration "${file.name}" needs a right the database role lacks (${denied.message}); run "strata db migrate" as the owner of schema strata`,
            { cause: error },
          );
        }
        throw new StoreError(
          "migration_failed",
          `migration "${file.name}" failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
      await trx
        .insertInto("strata.migrations")
        .values({ name: file.name, checksum: file.checksum })
        .execute();
      return true;
    });
    if (ran) applied.push(file.name);
  }
  return { applied };
}

/** The applied migrations by name, with their checksums; empty before the first migration. */
export async function readApplied(
  db: Kysely<Database>,
): Promise<Map<string, { checksum: string; applied_at: Date }>> {
  // kysely is imported with the first query, not with this module (see store.ts)
  const exists = await sql<{
    found: string | null;
  }>`select to_regclass('strata.migrations')::text as found`.execute(db);
  if (exists.rows[0]?.found == null) return new Map();
  const rows = await db
    .selectFrom("strata.migrations")
    .select(["name", "checksum", "applied_at"])
    .orderBy("name")
    .execute();
  return new Map(rows.map((r) => [r.name, r]));
}

function checkChecksum(file: MigrationFile, recorded: string): void {
  if (recorded !== file.checksum) {
    throw new StoreError(
      "migration_checksum",
      `migration "${file.name}" was edited after it was applied (checksum ${file.checksum.slice(0, 12)} differs from the recorded ${recorded.slice(0, 12)}); restore the file and put the change in a new migration`,
    );
  }
}
