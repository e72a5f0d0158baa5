import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import { materialize } from "../../src/materialize/materialize.js";
import { insertLedgerRows } from "../../src/store/cost-ledger.js";
import { pruneRuns } from "../../src/store/retention.js";
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
    const result = await materialize({ project, store, plan, storageRoot: storage.path });
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
    const supersededPath = (
      await store.db
        .selectFrom("strata.materializations")
        .select("storage_path")
        .where("id", "=", superseded.materializationId)
        .executeTakeFirstOrThrow()
    ).storage_path!;
    expect(existsSync(supersededPath)).toBe(true);

    const dry = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000), { dryRun: true });
    expect(dry).toMatchObject({ materializations: 2, ledgerRows: 2, runs: 0 });
    expect(await count("strata.materializations")).toBe(5);

    const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
    // first's raw[en] (superseded by second) and first's summary (superseded by recent) go;
    // first's raw[de] and second's raw[en] are still the latest and stay, with their runs.
    expect(result.materializations).toBe(2);
    expect(result.ledgerRows).toBe(2);
    expect(result.storagePaths).toContain(supersededPath);
    for (const path of result.storagePaths) await rm(path, { force: true });
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

  async function count(table: "strata.materializations" | "strata.runs"): Promise<number> {
    const row = await store.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }
});
