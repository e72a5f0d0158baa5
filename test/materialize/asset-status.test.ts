import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { type AssetStatusReport, assessAssets } from "../../src/materialize/asset-status.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import {
  type PlanRequest,
  planMaterialization,
} from "../../src/materialize/materialization-plan.js";
import type { RunResult } from "../../src/materialize/run-result.js";
import { latestMaterializations } from "../../src/store/materialization-queries.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

const rows = () => [{ id: 1 }];

/** `a → b → c` under `prefix`, with optional code versions. */
function chain(prefix: string, versions: { a?: string; b?: string; c?: string } = {}) {
  const a = asset({ key: `${prefix}/a`, codeVersion: versions.a, compute: rows });
  const b = asset({ key: `${prefix}/b`, codeVersion: versions.b, deps: { a }, compute: rows });
  const c = asset({ key: `${prefix}/c`, codeVersion: versions.c, deps: { b }, compute: rows });
  return [a, b, c];
}

describe.each(BACKENDS)("assessAssets over real materializations on %s", (backend) => {
  let store: TestStore;
  let storageRoot: string;
  let removeDir: () => Promise<void>;

  beforeAll(async () => {
    store = await createTestStore(backend);
    const dir = await createTempDir("strata-asset-status-");
    storageRoot = join(dir.path, "storage");
    removeDir = dir.remove;
  });

  afterAll(async () => {
    await store?.dispose();
    await removeDir?.();
  });

  async function run(
    assets: ReadonlyArray<AssetDefinition<object>>,
    request: PlanRequest,
  ): Promise<RunResult> {
    const definition = defineProject({ assets });
    const graph = AssetGraph.fromAssets(definition.assets);
    const plan = planMaterialization(graph, request);
    const result = await executeRun({ project: { definition, graph }, store, plan, storageRoot });
    return result;
  }

  /** The status report of every asset in `assets`, as `strata list` computes it. */
  async function assess(
    assets: ReadonlyArray<AssetDefinition<object>>,
  ): Promise<Map<string, AssetStatusReport>> {
    const graph = AssetGraph.fromAssets(assets);
    return assessAssets(graph, graph.keys(), await latestMaterializations(store.db));
  }

  /** `key → [status, causes]` for a compact comparison. */
  async function summary(
    assets: ReadonlyArray<AssetDefinition<object>>,
  ): Promise<Record<string, [string, ReadonlyArray<string>]>> {
    const reports = await assess(assets);
    return Object.fromEntries([...reports].map(([k, r]) => [k, [r.status, r.causes]]));
  }

  it("is missing before any run and fresh after one", async () => {
    const assets = chain("s1");
    const before = await assess(assets);
    expect(before.get("s1/b")).toEqual({
      key: "s1/b",
      status: "missing",
      causes: [],
      lastMaterializedAt: null,
      partitions: [{ partitionKey: null, status: "missing", causes: [], materialization: null }],
    });

    const result = await run(assets, { selection: "*" });
    expect(result.status).toBe("succeeded");
    const after = await assess(assets);
    expect(Object.fromEntries([...after].map(([k, r]) => [k, r.status]))).toEqual({
      "s1/a": "fresh",
      "s1/b": "fresh",
      "s1/c": "fresh",
    });
    const b = after.get("s1/b");
    const bStep = result.steps.find((s) => s.assetKey === "s1/b");
    expect(b?.partitions[0]?.materialization?.id).toBe(bStep?.materializationId);
    expect(b?.partitions[0]?.materialization?.runId).toBe(result.runId);
    expect(b?.lastMaterializedAt).toEqual(b?.partitions[0]?.materialization?.finishedAt);
    expect(b?.lastMaterializedAt).toBeInstanceOf(Date);
  });

  it("makes an asset with a new code version stale, and not its children", async () => {
    await run(chain("s2", { a: "1", b: "1" }), { selection: "*" });
    expect(await summary(chain("s2", { a: "1", b: "2" }))).toEqual({
      "s2/a": ["fresh", []],
      "s2/b": ["stale", ["has a new code version"]],
      "s2/c": ["fresh", []],
    });
    // going back to the version it was built with makes it fresh again
    expect((await assess(chain("s2", { a: "1", b: "1" }))).get("s2/b")?.status).toBe("fresh");
    // a version given to an asset built without one is a new code version too
    expect((await assess(chain("s2", { a: "1", b: "1", c: "1" }))).get("s2/c")?.causes).toEqual([
      "has a new code version",
    ]);
  });

  it("makes the direct child of a rematerialized asset stale, and not the grandchild", async () => {
    const assets = chain("s3");
    await run(assets, { selection: "*" });
    await run(assets, { selection: "s3/a" });
    expect(await summary(assets)).toEqual({
      "s3/a": ["fresh", []],
      "s3/b": ["stale", ['has a new dependency materialization of "s3/a"']],
      "s3/c": ["fresh", []],
    });

    // rebuilding b reads the new a; now c is the one behind
    await run(assets, { selection: "s3/b" });
    expect(await summary(assets)).toEqual({
      "s3/a": ["fresh", []],
      "s3/b": ["fresh", []],
      "s3/c": ["stale", ['has a new dependency materialization of "s3/b"']],
    });
  });

  it("keeps the last successful materialization when a rebuild fails", async () => {
    const assets = chain("s4");
    await run(assets, { selection: "*" });
    const [a, , c] = assets;
    const broken = asset({
      key: "s4/b",
      deps: { a: a! },
      compute: () => {
        throw new Error("boom");
      },
    });
    const failed = await run([a!, broken, c!], { selection: "s4/b" });
    expect(failed.status).toBe("failed");
    expect(await summary(assets)).toEqual({
      "s4/a": ["fresh", []],
      "s4/b": ["fresh", []],
      "s4/c": ["fresh", []],
    });
  });

  it("makes an asset stale when it gains or loses a dependency", async () => {
    const x = asset({ key: "s5/x", compute: rows });
    const a = asset({ key: "s5/a", compute: rows });
    const b = asset({ key: "s5/b", deps: { a }, compute: rows });
    const c = asset({ key: "s5/c", deps: { b, x }, compute: rows });
    await run([x, a, b, c], { selection: "*" });
    expect(await summary([x, a, b, c])).toMatchObject({ "s5/b": ["fresh", []] });

    const bPlusX = asset({ key: "s5/b", deps: { a, x }, compute: rows });
    const cWithoutX = asset({ key: "s5/c", deps: { b: bPlusX }, compute: rows });
    expect(await summary([x, a, bPlusX, cWithoutX])).toEqual({
      "s5/a": ["fresh", []],
      "s5/b": ["stale", ['has a new dependency on "s5/x"']],
      "s5/c": ["stale", ['removed dependency on "s5/x"']],
      "s5/x": ["fresh", []],
    });
  });

  it("reports each partition, and staleness by the planner's partition mapping", async () => {
    const languages = staticPartitions(["en", "de"]);
    const docs = asset({ key: "s6/docs", partitions: languages, compute: rows });
    const per = asset({ key: "s6/per", partitions: languages, deps: { docs }, compute: rows });
    const all = asset({ key: "s6/all", deps: { docs }, compute: rows });
    const assets = [docs, per, all];
    const partitionStatuses = async (key: string) =>
      (await assess(assets)).get(key)?.partitions.map((p) => [p.partitionKey, p.status, p.causes]);

    await run(assets, { selection: "*", partitions: ["en"] });
    expect(await partitionStatuses("s6/docs")).toEqual([
      ["en", "fresh", []],
      ["de", "missing", []],
    ]);
    expect(await partitionStatuses("s6/per")).toEqual([
      ["en", "fresh", []],
      ["de", "missing", []],
    ]);
    expect(await summary(assets)).toEqual({
      "s6/all": ["fresh", []],
      "s6/docs": ["missing", []],
      "s6/per": ["missing", []],
    });

    // a new partition of docs: per[en] read docs[en] only and stays fresh; all read every
    // partition, so it is behind
    await run(assets, { selection: "s6/docs", partitions: ["de"] });
    expect(await partitionStatuses("s6/per")).toEqual([
      ["en", "fresh", []],
      ["de", "missing", []],
    ]);
    expect(await summary(assets)).toEqual({
      "s6/all": ["stale", ['has a new dependency materialization of "s6/docs"']],
      "s6/docs": ["fresh", []],
      "s6/per": ["missing", []],
    });

    // rebuilding docs[en] makes per[en] stale; per[de] is still missing
    await run(assets, { selection: "s6/docs", partitions: ["en"] });
    expect(await partitionStatuses("s6/per")).toEqual([
      ["en", "stale", ['has a new dependency materialization of "s6/docs"']],
      ["de", "missing", []],
    ]);
    expect((await assess(assets)).get("s6/per")?.status).toBe("stale");

    await run(assets, { selection: "s6/docs+", partitions: ["en", "de"] });
    expect(await summary(assets)).toEqual({
      "s6/all": ["fresh", []],
      "s6/docs": ["fresh", []],
      "s6/per": ["fresh", []],
    });
  });
});
