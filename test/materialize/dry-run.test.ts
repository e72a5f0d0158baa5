import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferSpec } from "../../src/assets/asset-context.js";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { estimatePlan } from "../../src/materialize/dry-run.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import { createTestStore, type TestStore } from "../helpers/test-store.js";

interface Chunk {
  readonly id: string;
  readonly text: string;
}

const SPEC: InferSpec<Chunk, string> = {
  model: "small",
  id: (c) => c.id,
  messages: (c) => [{ role: "user", content: `Summarize ${c.text}` }],
  params: { max_tokens: 32 },
};

/** `count` chunks whose texts repeat every `distinct`. */
function chunks(tag: string, count: number, distinct: number): Chunk[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${tag}-${i}`,
    text: `dry-run prompt ${i % distinct}`,
  }));
}

function inferAsset(key: string, items: ReadonlyArray<Chunk>): AssetDefinition<object> {
  return asset({
    key,
    compute: async (ctx) => (await ctx.infer(items, SPEC)).map((r) => ({ id: r.id })),
  }) as AssetDefinition<object>;
}

describe("estimatePlan", () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await createTestStore("pglite");
  });
  afterAll(async () => {
    await store.dispose();
  });

  async function estimate(assets: ReadonlyArray<AssetDefinition<object>>) {
    const definition = defineProject({
      assets,
      endpoints: { sim: { baseURL: "http://127.0.0.1:9/v1" } },
      models: {
        small: {
          endpoint: "sim",
          name: "dry-small",
          price: { inputPerMTok: 1, outputPerMTok: 2 },
        },
      },
    });
    const graph = AssetGraph.fromAssets(definition.assets);
    const plan = planMaterialization(graph, { selection: "*" });
    // no upstream value is read: the assets here have no deps
    const storageRoot = join(tmpdir(), "strata-dry-run-values");
    const steps = await estimatePlan({ project: { definition, graph }, store, plan, storageRoot });
    return new Map(steps.map((s) => [s.step.assetKey, s.inference!]));
  }

  it("counts a request that documents repeat once, as a run sends it", async () => {
    const distinct = (await estimate([inferAsset("distinct", chunks("d", 27, 27))])).get(
      "distinct",
    )!;
    const repeated = (await estimate([inferAsset("repeated", chunks("r", 122, 27))])).get(
      "repeated",
    )!;
    expect(repeated.documents).toBe(122);
    expect(repeated.cacheHits).toBe(95);
    expect(repeated.promptTokens).toBe(distinct.promptTokens);
    expect(repeated.outputTokenCeiling).toBe(27 * 32);
    expect(repeated.costHighUsd).toBe(distinct.costHighUsd);
  });

  it("counts a request that two assets of the plan make once", async () => {
    const both = await estimate([
      inferAsset("first", chunks("a", 10, 10)),
      inferAsset("second", chunks("b", 10, 10)),
    ]);
    const sent = [...both.values()].map((e) => e.documents - e.cacheHits);
    expect(sent.sort()).toEqual([0, 10]);
  });
});
