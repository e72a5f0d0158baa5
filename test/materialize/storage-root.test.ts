import { existsSync, renameSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asset, defineProject, materialize, type StorageConfig } from "../../src/index.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

// Values recorded relative to a storage root: a second machine (here: another project folder)
// sharing the database and the storage reads what the first stored, wherever it mounts it.

function pipeline(storage?: StorageConfig) {
  const docs = asset({
    key: "raw/docs",
    compute: async () => [
      { id: "d1", words: 3 },
      { id: "d2", words: 5 },
    ],
  });
  const summary = asset({
    key: "summary",
    deps: { docs },
    compute: async (_ctx, { docs }) => [{ words: docs.reduce((n, d) => n + d.words, 0) }],
  });
  const definition = defineProject({ assets: [docs, summary], ...(storage ? { storage } : {}) });
  return { definition, graph: AssetGraph.fromAssets(definition.assets) };
}

describe.each(BACKENDS)("value storage roots on %s", (backend) => {
  let store: TestStore;
  let temp: Awaited<ReturnType<typeof createTempDir>>;
  beforeEach(async () => {
    store = await createTestStore(backend);
    temp = await createTempDir("strata-storage-root-");
  });
  afterEach(async () => {
    await store.dispose();
    await temp.remove();
  });

  const recordedPath = async (runId: string, assetKey: string) =>
    (
      await sql<{ storage_path: string }>`
        select storage_path from strata.materializations
        where run_id = ${runId} and asset_key = ${assetKey}`.execute(store.db)
    ).rows[0]!.storage_path;

  it("lets a project in another folder read a value stored under the shared STRATA_STORAGE", async () => {
    const shared = join(temp.path, "mount-on-a");
    const first = await materialize({
      project: { ...pipeline(), dir: join(temp.path, "machine-a") },
      store,
      select: "raw/docs",
      env: { STRATA_STORAGE: shared },
    });
    expect(first.status).toBe("succeeded");
    const recorded = await recordedPath(first.runId, "raw/docs");
    expect(recorded).toBe(`raw/docs/__all__/${first.steps[0]!.materializationId}.arrow`);
    expect(existsSync(join(shared, "raw", "docs", "__all__"))).toBe(true);

    // the other machine mounts the same storage elsewhere
    const mountOnB = join(temp.path, "mount-on-b");
    renameSync(shared, mountOnB);
    const second = await materialize({
      project: { ...pipeline(), dir: join(temp.path, "machine-b") },
      store,
      select: "summary",
      env: { STRATA_STORAGE: mountOnB },
    });
    expect(second.status, second.error ?? "").toBe("succeeded");
    expect(await second.values.get("summary")).toEqual([{ words: 8 }]);
    for (const machine of ["machine-a", "machine-b"]) {
      expect(existsSync(join(temp.path, machine, ".strata"))).toBe(false);
    }
  });

  it("puts values under the project's storage.root, taken from the project's folder", async () => {
    const dir = join(temp.path, "project");
    const result = await materialize({
      project: { ...pipeline({ root: "../values" }), dir },
      store,
      env: {},
    });
    expect(result.status).toBe("succeeded");
    const summary = result.steps.find((s) => s.assetKey === "summary")!;
    expect(
      existsSync(
        join(temp.path, "values", "summary", "__all__", `${summary.materializationId}.arrow`),
      ),
    ).toBe(true);
    expect(existsSync(join(dir, ".strata"))).toBe(false);
    // STRATA_STORAGE wins over the project's setting
    const elsewhere = join(temp.path, "elsewhere");
    const again = await materialize({
      project: { ...pipeline({ root: "../values" }), dir },
      store,
      select: "raw/docs",
      env: { STRATA_STORAGE: elsewhere },
    });
    expect(
      existsSync(
        join(elsewhere, "raw", "docs", "__all__", `${again.steps[0]!.materializationId}.arrow`),
      ),
    ).toBe(true);
  });

  it("still reads a value an earlier version recorded by its absolute path", async () => {
    const oldRoot = join(temp.path, "old-storage");
    const first = await materialize({
      project: pipeline(),
      store,
      select: "raw/docs",
      storageDir: oldRoot,
    });
    const id = first.steps[0]!.materializationId;
    const absolute = join(oldRoot, "raw", "docs", "__all__", `${id}.arrow`);
    await sql`update strata.materializations set storage_path = ${absolute} where id = ${id}`.execute(
      store.db,
    );
    const second = await materialize({
      project: pipeline(),
      store,
      select: "summary",
      storageDir: join(temp.path, "new-storage"),
    });
    expect(second.status, second.error ?? "").toBe("succeeded");
    expect(await second.values.get("summary")).toEqual([{ words: 8 }]);
  });
});
