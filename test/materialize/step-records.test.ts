import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

// How a run's step states reach the database: group-committed, and never reported as a success
// that the database does not hold.
describe.each(BACKENDS)("step records of materialize on %s", (backend) => {
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

  const statuses = async (runId: string) =>
    Object.fromEntries(
      (
        await store.db
          .selectFrom("strata.materializations")
          .select(["asset_key", "status"])
          .where("run_id", "=", runId)
          .execute()
      ).map((r) => [r.asset_key, r.status]),
    );

  it("records a long chain of quick steps with every state and provenance row", async () => {
    const chain: ReturnType<typeof asset>[] = [];
    for (let i = 0; i < 200; i++) {
      const prev = chain[i - 1];
      chain.push(
        asset({
          key: `c${i}`,
          deps: prev === undefined ? {} : { prev },
          compute: (_ctx, inputs) => [
            { i, prev: (inputs as { prev?: { i: number }[] }).prev?.[0]?.i ?? -1 },
          ],
        }),
      );
    }
    const definition = defineProject({ assets: chain });
    const project = { definition, graph: AssetGraph.fromAssets(definition.assets) };
    const plan = planMaterialization(project.graph, { selection: "*" });
    const result = await executeRun({ project, store, plan, storageRoot: storage.path });
    expect(result.status).toBe("succeeded");

    const counts = await sql<{ succeeded: number; inputs: number; timed: number }>`
      select
        (select count(*) from strata.materializations
          where run_id = ${result.runId} and status = 'succeeded' and row_count = 1)::int as succeeded,
        (select count(*) from strata.materialization_inputs i
          join strata.materializations m on m.id = i.materialization_id
          where m.run_id = ${result.runId})::int as inputs,
        (select count(*) from strata.materializations
          where run_id = ${result.runId} and started_at <= finished_at)::int as timed`.execute(
      store.db,
    );
    expect(counts.rows[0]).toEqual({ succeeded: 200, inputs: 199, timed: 200 });
    const run = await store.db
      .selectFrom("strata.runs")
      .select(["status", "finished_at"])
      .where("id", "=", result.runId)
      .executeTakeFirstOrThrow();
    expect(run.status).toBe("succeeded");
  });

  it("fails the steps whose states the database refused, and the run, instead of reporting success", async () => {
    const a = asset({ key: "a", compute: () => [{ n: 1 }] });
    // b's compute makes the database refuse the successes of b and c: neither state can be
    // written, though c reads b's value in memory and builds fine
    const b = asset({
      key: "b",
      deps: { a },
      compute: async () => {
        await sql`alter table strata.materializations
          add constraint refuse_successes check (status <> 'succeeded' or asset_key = 'a') not valid`.execute(
          store.db,
        );
        return [{ n: 2 }];
      },
    });
    const c = asset({ key: "c", deps: { b }, compute: () => [{ n: 3 }] });
    const definition = defineProject({ assets: [a, b, c] });
    const project = { definition, graph: AssetGraph.fromAssets(definition.assets) };
    const plan = planMaterialization(project.graph, { selection: "*" });
    const result = await executeRun({ project, store, plan, storageRoot: storage.path });

    expect(result.status).toBe("failed");
    const byKey = Object.fromEntries(result.steps.map((s) => [s.assetKey, s]));
    expect(byKey.b?.status).toBe("failed");
    expect(byKey.b?.error).toMatch(/could not record .* in the database/);
    expect(byKey.c?.status).not.toBe("succeeded");
    expect(result.error).toMatch(/could not record/);

    // the database holds exactly the successes the result reports (a's state may have shared
    // the refused batch, which then fails it too)
    const recorded = await statuses(result.runId);
    for (const step of result.steps) {
      expect(recorded[step.assetKey] === "succeeded", step.assetKey).toBe(
        step.status === "succeeded",
      );
    }
    const run = await store.db
      .selectFrom("strata.runs")
      .select("status")
      .where("id", "=", result.runId)
      .executeTakeFirstOrThrow();
    expect(run.status).toBe("failed");
  });
});
