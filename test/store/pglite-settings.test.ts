import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { PGLITE_SETTINGS } from "../../src/store/pglite-settings.js";
import { openEmbeddedStore, openMemoryStore, type Store } from "../../src/store/store.js";
import { createTempDir } from "../helpers/temp-dir.js";

/** The value of a setting as the database reports it (`show name`). */
async function show(store: Store, name: string): Promise<string> {
  const result = await sql<Record<string, string>>`show ${sql.raw(name)}`.execute(store.db);
  return Object.values(result.rows[0] ?? {})[0] ?? "";
}

describe("PGLITE_SETTINGS", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("bounds the buffer pool of a directory store, opened fresh and reopened", async () => {
    const temp = await createTempDir("strata-pglite-settings-");
    cleanups.push(() => temp.remove());
    const dataDir = join(temp.path, "db");
    for (const _open of [1, 2]) {
      const store = await openEmbeddedStore(dataDir);
      try {
        expect(await show(store, "shared_buffers")).toBe("16MB");
        expect(await show(store, "maintenance_work_mem")).toBe("16MB");
      } finally {
        await store.close();
      }
    }
  });

  it("keeps PGlite's own start parameters next to strata's settings", async () => {
    const store = await openMemoryStore();
    cleanups.push(() => store.close());
    for (const [name, value] of Object.entries(PGLITE_SETTINGS)) {
      expect(await show(store, name)).toBe(value);
    }
    // PGlite's defaults that strata's parameters must not drop
    expect(await show(store, "search_path")).toBe("public");
    expect(await show(store, "max_parallel_workers_per_gather")).toBe("0");
  });
});
