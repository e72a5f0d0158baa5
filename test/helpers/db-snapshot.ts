import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { type Kysely, sql } from "kysely";
import type { Database } from "../../src/store/database.js";

/** What "the database is unchanged" compares: row counts, the catalog and the stored files. */
export interface DatabaseSnapshot {
  /** `strata.<table>` → its row count, for every base table in the schema. */
  readonly rows: Readonly<Record<string, number>>;
  /** `strata.catalog_state.fingerprint`, or null before the first sync. */
  readonly catalogFingerprint: string | null;
  /** Paths under `<project>/.strata/storage`, sorted. */
  readonly storedFiles: ReadonlyArray<string>;
}

/**
 * Counts the rows of every table in schema `strata`, reads the catalog fingerprint and lists the
 * Arrow files a project has stored: equal snapshots before and after a command mean it recorded
 * nothing.
 *
 * @example
 * const before = await snapshotDatabase(store.db, project.dir);
 */
export async function snapshotDatabase(
  db: Kysely<Database>,
  projectDir: string,
): Promise<DatabaseSnapshot> {
  const tables = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = 'strata' and table_type = 'BASE TABLE' order by table_name`.execute(db);
  const rows: Record<string, number> = {};
  for (const { name } of tables.rows) {
    const counted = await sql<{ n: number }>`
      select count(*)::int as n from ${sql.table(`strata.${name}`)}`.execute(db);
    rows[name] = counted.rows[0]?.n ?? -1;
  }
  const catalog = await sql<{ fingerprint: string }>`
    select fingerprint from strata.catalog_state`.execute(db);
  return {
    rows,
    catalogFingerprint: catalog.rows[0]?.fingerprint ?? null,
    storedFiles: await listFiles(join(projectDir, ".strata", "storage")),
  };
}

async function listFiles(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}
