import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import {
  MIGRATIONS_DIR,
  migrate,
  migrationStatus,
  readMigrations,
} from "../../src/store/migrator.js";
import { openPostgresStore, type Store } from "../../src/store/store.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestDatabase, openEmptyPgliteStore } from "../helpers/test-store.js";

const TABLES = [
  "runs",
  "materializations",
  "materialization_inputs",
  "assets",
  "asset_deps",
  "inference_calls",
  "migrations",
];
const VIEWS = ["cost_by_asset", "cost_by_model", "cost_by_run", "cost_by_day"];
/** Every migration shipped, in order. */
const MIGRATION_NAMES = (await readMigrations()).map((m) => m.name);

/** An unmigrated store on the backend, and its cleanup. */
async function emptyStore(backend: string): Promise<{ store: Store; dispose(): Promise<void> }> {
  if (backend === "pglite") {
    const store = await openEmptyPgliteStore();
    return { store, dispose: () => store.close() };
  }
  const database = await createTestDatabase();
  const store = await openPostgresStore(database.url);
  return {
    store,
    dispose: async () => {
      await store.close();
      await database.drop();
    },
  };
}

describe.each(BACKENDS)("migrate on %s", (backend) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it("creates every table and view of the strata schema", async () => {
    const { store, dispose } = await emptyStore(backend);
    cleanups.push(dispose);
    const { applied } = await migrate(store.db);
    expect(applied).toEqual(MIGRATION_NAMES);
    const relations = await sql<{ name: string; kind: string }>`
      select c.relname as name, c.relkind as kind from pg_class c
      join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'strata' and c.relkind in ('r', 'v')`.execute(store.db);
    const tables = relations.rows.filter((r) => r.kind === "r").map((r) => r.name);
    const views = relations.rows.filter((r) => r.kind === "v").map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(TABLES));
    expect(views.sort()).toEqual([...VIEWS].sort());
  });

  it("is a no-op the second time and reports every migration applied", async () => {
    const { store, dispose } = await emptyStore(backend);
    cleanups.push(dispose);
    expect((await migrationStatus(store.db)).map((m) => m.status)).toEqual(
      MIGRATION_NAMES.map(() => "pending"),
    );
    await migrate(store.db);
    expect((await migrate(store.db)).applied).toEqual([]);
    const status = await migrationStatus(store.db);
    expect(status).toEqual(
      MIGRATION_NAMES.map((name) => ({ name, status: "applied", appliedAt: expect.any(Date) })),
    );
  });

  it("refuses a migration edited after it was applied and names the file", async () => {
    const { store, dispose } = await emptyStore(backend);
    cleanups.push(dispose);
    const dir = await createTempDir();
    cleanups.push(dir.remove);
    for (const name of await readdir(MIGRATIONS_DIR)) {
      await copyFile(join(MIGRATIONS_DIR, name), join(dir.path, name));
    }
    await migrate(store.db, await readMigrations(dir.path));
    await writeFile(join(dir.path, "0001_init.sql"), "-- edited\nselect 1;");
    const edited = await readMigrations(dir.path);
    await expect(migrate(store.db, edited)).rejects.toMatchObject({
      code: "migration_checksum",
      message: expect.stringContaining('"0001_init.sql" was edited after it was applied'),
    });
    await expect(migrationStatus(store.db, edited)).rejects.toMatchObject({
      code: "migration_checksum",
    });
  });

  it("applies a new migration after the ones already applied, in a transaction", async () => {
    const { store, dispose } = await emptyStore(backend);
    cleanups.push(dispose);
    const files = await readMigrations();
    await migrate(store.db, files);
    const broken = {
      name: "9999_broken.sql",
      sql: "create table strata.half_done (id int); select no_such_function();",
      checksum: "x",
    };
    await expect(migrate(store.db, [...files, broken])).rejects.toMatchObject({
      code: "migration_failed",
      message: expect.stringContaining('"9999_broken.sql"'),
    });
    // the failed migration left nothing behind and is still pending
    const leftover = await sql<{ found: string | null }>`
      select to_regclass('strata.half_done')::text as found`.execute(store.db);
    expect(leftover.rows[0]?.found).toBeNull();
    const fixed = { ...broken, sql: "create table strata.half_done (id int);" };
    expect((await migrate(store.db, [...files, fixed])).applied).toEqual(["9999_broken.sql"]);
  });
});

describe.skipIf(!BACKENDS.includes("postgres"))("migrate on one server from two processes", () => {
  it("applies each migration exactly once when two stores migrate at the same time", async () => {
    const database = await createTestDatabase();
    const stores = await Promise.all([
      openPostgresStore(database.url),
      openPostgresStore(database.url),
      openPostgresStore(database.url),
    ]);
    try {
      const results = await Promise.all(stores.map((s) => migrate(s.db)));
      expect(results.flatMap((r) => r.applied).sort()).toEqual(MIGRATION_NAMES);
      const rows = await sql<{
        n: number;
      }>`select count(*)::int as n from strata.migrations`.execute(stores[0]!.db);
      expect(rows.rows[0]?.n).toBe(MIGRATION_NAMES.length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await database.drop();
    }
  });
});
