import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import { insertLedgerRows } from "../../src/store/cost-ledger.js";
import { pruneRuns } from "../../src/store/retention.js";
import { storedValuePath } from "../../src/values/storage-path.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

const raw = asset({
  key: "raw",
  partitions: staticPartitions(["en", "de"]),
  compute: (ctx) => [{ lang: ctx.partitionKey }],
});
const summary = asset({
  key: "summary",
  deps: { raw },
  compute: (_c, { raw }) => [{ n: raw.length }],
});
const definition = defineProject({ assets: [raw, summary] });
const project = { definition, graph: AssetGraph.fromAssets(definition.assets) };

describe.each(BACKENDS)("pruneRuns on %s", (backend) => {
  let store: TestStore;
  let storage: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    store = await createTestStore(backend);
    storage = await createTempDir();
  });
  afterEach(async () => {
    await store.dispose();
    await storage.remove();
  });

  const run = async (selection: string, partitions: string[]) => {
    const plan = planMaterialization(project.graph, { selection, partitions });
    const result = await executeRun({ project, store, plan, storageRoot: storage.path });
    expect(result.status).toBe("succeeded");
    await insertLedgerRows(store.db, [
      {
        runId: result.runId,
        materializationId: result.steps[0]!.materializationId,
        assetKey: result.steps[0]!.assetKey,
        partitionKey: result.steps[0]!.partitionKey,
        documentId: "d1",
        model: "small",
        providerModel: "m",
        endpoint: "e",
        requestHash: `h-${result.runId}`,
        status: "succeeded",
        attempts: 1,
        promptTokens: 10,
        cachedTokens: 0,
        completionTokens: 5,
        reasoningTokens: 0,
        inputPricePerMTok: "1",
        cachedInputPricePerMTok: "1",
        outputPricePerMTok: "1",
        latencyMs: 1,
        cacheHit: false,
        cachedFrom: null,
        error: null,
        output: "x",
      },
    ]);
    return result;
  };

  const age = (runId: string, days: number) =>
    sql`update strata.runs set started_at = now() - make_interval(days => ${days}),
          finished_at = now() - make_interval(days => ${days}) where id = ${runId}`.execute(
      store.db,
    );

  it("deletes old ledger rows and superseded materializations, keeping the latest of every partition", async () => {
    const first = await run("*", ["en", "de"]); // raw[en], raw[de], summary
    const second = await run("raw", ["en"]); // supersedes raw[en] only
    const recent = await run("summary", []); // recent: must be untouched
    await age(first.runId, 40);
    await age(second.runId, 35);
    const superseded = first.steps.find((s) => s.id === "raw[en]")!;
    // recorded relative to the storage root
    const supersededRecorded = (
      await store.db
        .selectFrom("strata.materializations")
        .select("storage_path")
        .where("id", "=", superseded.materializationId)
        .executeTakeFirstOrThrow()
    ).storage_path!;
    const supersededPath = storedValuePath(storage.path, supersededRecorded);
    expect(existsSync(supersededPath)).toBe(true);

    const dry = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000), { dryRun: true });
    expect(dry).toMatchObject({ materializations: 2, ledgerRows: 2, runs: 0 });
    expect(await count("strata.materializations")).toBe(5);

    const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    // first's raw[en] (superseded by second) and first's summary (superseded by recent) go;
    // first's raw[de] and second's raw[en] are still the latest and stay, with their runs.
    expect(result.materializations).toBe(2);
    expect(result.ledgerRows).toBe(2);
    expect(result.storagePaths).toContain(supersededRecorded);
    for (const path of result.storagePaths) {
      await rm(storedValuePath(storage.path, path), { force: true });
    }
    expect(existsSync(supersededPath)).toBe(false);

    const left = await store.db
      .selectFrom("strata.materializations")
      .select(["asset_key", "partition_key", "run_id"])
      .orderBy("asset_key")
      .orderBy("partition_key")
      .execute();
    expect(left).toEqual([
      { asset_key: "raw", partition_key: "de", run_id: first.runId },
      { asset_key: "raw", partition_key: "en", run_id: second.runId },
      { asset_key: "summary", partition_key: null, run_id: recent.runId },
    ]);
    const ledger = await store.db.selectFrom("strata.inference_calls").select("run_id").execute();
    expect(ledger.map((r) => r.run_id)).toEqual([recent.runId]);
    expect(await count("strata.runs")).toBe(3);
  });

  it("removes an old run that is left with nothing", async () => {
    const first = await run("raw", ["en"]);
    await run("raw", ["en"]);
    await age(first.runId, 60);
    const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    expect(result).toMatchObject({ runs: 1, materializations: 1 });
    const runs = await store.db.selectFrom("strata.runs").select("id").execute();
    expect(runs.map((r) => r.id)).not.toContain(first.runId);
  });

  /** The materialization ids `id` read, sorted. */
  const inputsOf = async (id: string) =>
    (
      await store.db
        .selectFrom("strata.materialization_inputs")
        .select("input_materialization_id")
        .where("materialization_id", "=", id)
        .execute()
    )
      .map((r) => r.input_materialization_id)
      .sort();

  const pathOf = async (id: string) =>
    (
      await store.db
        .selectFrom("strata.materializations")
        .select("storage_path")
        .where("id", "=", id)
        .executeTakeFirstOrThrow()
    ).storage_path!;

  const idOf = (
    result: { steps: ReadonlyArray<{ id: string; materializationId: string }> },
    id: string,
  ) => result.steps.find((s) => s.id === id)!.materializationId;

  it("keeps what the latest materialization read, with its files and provenance rows", async () => {
    const first = await run("*", ["en", "de"]); // raw[en], raw[de], summary reading both
    const second = await run("raw", ["en"]); // supersedes raw[en], but summary read the old one
    await age(first.runId, 40);
    await age(second.runId, 35);
    const summaryId = idOf(first, "summary");
    const readBefore = await inputsOf(summaryId);
    expect(readBefore).toEqual([idOf(first, "raw[de]"), idOf(first, "raw[en]")].sort());
    const oldEnPath = await pathOf(idOf(first, "raw[en]"));

    const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    expect(result).toMatchObject({ materializations: 0, runs: 0, storagePaths: [] });
    expect(await inputsOf(summaryId)).toEqual(readBefore);
    expect(existsSync(storedValuePath(storage.path, oldEnPath))).toBe(true);
  });

  it("keeps what a materialization of a recent run read, even when it is superseded and old", async () => {
    const first = await run("*", ["en", "de"]);
    const recent = await run("summary", []); // reads first's raw[en] and raw[de]
    await run("raw", ["en"]); // supersedes first's raw[en]
    await age(first.runId, 40);
    const oldSummaryPath = await pathOf(idOf(first, "summary"));
    const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    // only first's summary goes: superseded, and nothing kept read it
    expect(result.materializations).toBe(1);
    expect(result.storagePaths).toEqual([oldSummaryPath]);
    expect(await inputsOf(idOf(recent, "summary"))).toEqual(
      [idOf(first, "raw[de]"), idOf(first, "raw[en]")].sort(),
    );
  });

  it("keeps the provenance of kept materializations transitively, up the whole chain", async () => {
    const a = asset({ key: "chain/a", compute: () => [{ v: 1 }] });
    const b = asset({ key: "chain/b", deps: { a }, compute: (_c, { a }) => a });
    const c = asset({ key: "chain/c", deps: { b }, compute: (_c, { b }) => b });
    const chain = defineProject({ assets: [a, b, c] });
    const chainProject = { definition: chain, graph: AssetGraph.fromAssets(chain.assets) };
    const runChain = async (selection: string) => {
      const plan = planMaterialization(chainProject.graph, { selection, partitions: [] });
      const result = await executeRun({
        project: chainProject,
        store,
        plan,
        storageRoot: storage.path,
      });
      expect(result.status).toBe("succeeded");
      return result;
    };
    const all = await runChain("*"); // a1, b1 (read a1), c1 (read b1)
    const newA = await runChain("chain/a"); // a2
    const newB = await runChain("chain/b"); // b2 (read a2); c1 is still the latest c
    for (const r of [all, newA, newB]) await age(r.runId, 40);
    const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    expect(result.materializations).toBe(0);
    expect(await inputsOf(idOf(all, "chain/c"))).toEqual([idOf(all, "chain/b")]);
    expect(await inputsOf(idOf(all, "chain/b"))).toEqual([idOf(all, "chain/a")]);
    expect(existsSync(storedValuePath(storage.path, await pathOf(idOf(all, "chain/a"))))).toBe(
      true,
    );

    // once a new c reads the new b, the old chain is no one's provenance and goes
    const newC = await runChain("chain/c");
    await age(newC.runId, 40);
    const later = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    expect(later.materializations).toBe(3);
    expect(later.runs).toBe(1);
  });

  async function count(table: "strata.materializations" | "strata.runs"): Promise<number> {
    const row = await store.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
});
