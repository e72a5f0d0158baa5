import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  asset,
  defineProject,
  materialize,
  resumeRun,
  type Simulator,
  StrataError,
  startSimulator,
  staticPartitions,
} from "../../src/index.js";
import { toFemtos } from "../../src/util/decimal.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

// The public run façade as a user's test calls it: a project from defineProject(), the
// simulator as the endpoint, and (unless a store is given) an in-memory embedded store.

interface Doc {
  readonly id: string;
  readonly text: string;
}

const PRICE = { inputPerMTok: 0.15, cachedInputPerMTok: 0.075, outputPerMTok: 0.6 };

/** `raw/documents` (N documents) → `analyses` (one ctx.infer call per document, model `small`). */
function inferenceProject(
  sim: Simulator,
  salt: string,
  count: number,
  options: { readonly failAfterInfer?: () => boolean; readonly maxConcurrency?: number } = {},
) {
  const documents = asset({
    key: "raw/documents",
    compute: async (): Promise<Doc[]> =>
      Array.from({ length: count }, (_, i) => ({ id: `doc-${i}`, text: `${salt} #${i}` })),
  });
  const analyses = asset({
    key: "analyses",
    deps: { documents },
    compute: async (ctx, { documents }) => {
      const rows = await ctx.infer(documents, {
        model: "small",
        id: (doc) => doc.id,
        messages: (doc) => [{ role: "user", content: `Analyze: ${doc.text}` }],
        params: { max_tokens: 16, temperature: 0 },
      });
      if (options.failAfterInfer?.() === true) throw new Error("the report could not be written");
      return rows;
    },
  });
  return defineProject({
    assets: [documents, analyses],
    endpoints: { sim: { baseURL: sim.url, maxConcurrency: options.maxConcurrency ?? 8 } },
    models: { small: { endpoint: "sim", name: "facade-small", price: PRICE } },
  });
}

type Bill = ReturnType<Simulator["ledger"]>["totals"];

/** What the simulator billed since `before`. */
function billSince(sim: Simulator, before: Bill): Bill {
  const now = sim.ledger().totals;
  return {
    calls: now.calls - before.calls,
    promptTokens: now.promptTokens - before.promptTokens,
    cachedTokens: now.cachedTokens - before.cachedTokens,
    completionTokens: now.completionTokens - before.completionTokens,
  };
}

/** What a bill costs at {@link PRICE}, in femto-USD (10⁻¹⁵ USD). */
function billFemtos(bill: Bill): bigint {
  const { promptTokens, cachedTokens, completionTokens } = bill;
  // nano-USD per token: $0.15/MTok = 150 n$, $0.075/MTok = 75 n$, $0.60/MTok = 600 n$
  const nanos = (promptTokens - cachedTokens) * 150 + cachedTokens * 75 + completionTokens * 600;
  return BigInt(nanos) * 1_000_000n;
}

describe("materialize (the public run façade)", () => {
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0 });
  });
  afterAll(async () => {
    await sim?.close();
  });

  it("builds a plain asset and an inference asset, reporting rows, tokens, the bill's cost and values", async () => {
    const before = sim.ledger().totals;
    const project = inferenceProject(sim, "two-assets", 5);

    const result = await materialize({ project, env: {} });

    expect(result.status).toBe("succeeded");
    expect(result.error).toBeNull();
    const [documents, analyses] = result.steps;
    expect(documents).toMatchObject({
      assetKey: "raw/documents",
      status: "succeeded",
      rows: 5,
      promptTokens: 0,
      costUsd: "0",
    });
    expect(analyses).toMatchObject({ assetKey: "analyses", status: "succeeded", rows: 5 });
    const bill = billSince(sim, before);
    expect(bill.calls).toBe(5);
    expect(analyses?.promptTokens).toBe(bill.promptTokens);
    expect(analyses?.cachedTokens).toBe(bill.cachedTokens);
    expect(analyses?.completionTokens).toBe(bill.completionTokens);
    expect(bill.completionTokens).toBeGreaterThan(0);
    // exact: the ledger's decimal cost is the simulator's bill at the model's prices
    expect(toFemtos(analyses?.costUsd ?? "")).toBe(billFemtos(bill));
    expect(toFemtos(result.costUsd)).toBe(billFemtos(bill));

    const docs = await result.values.get("raw/documents");
    expect(docs).toEqual(
      Array.from({ length: 5 }, (_, i) => ({ id: `doc-${i}`, text: `two-assets #${i}` })),
    );
    const answers = await result.values.get("analyses");
    expect(answers).toHaveLength(5);
    for (const row of answers ?? []) {
      expect(row).toMatchObject({ status: "succeeded", model: "small", error: null });
      expect(typeof row.output).toBe("string");
    }
    expect((await result.values.table("analyses"))?.numRows).toBe(5);
  });

  it("builds only the selected assets", async () => {
    const billedBefore = sim.ledger().totals.calls;
    const project = inferenceProject(sim, "subset", 3);

    const result = await materialize({ project, select: "raw/documents", env: {} });

    expect(result.status).toBe("succeeded");
    expect(result.steps.map((s) => s.assetKey)).toEqual(["raw/documents"]);
    expect(sim.ledger().totals.calls).toBe(billedBefore);
    expect(result.costUsd).toBe("0");
    await expect(result.values.get("analyses")).rejects.toMatchObject({ code: "bad_usage" });
  });

  it("builds the given partitions, one value each", async () => {
    const byLanguage = asset({
      key: "texts",
      partitions: staticPartitions(["en", "de", "fr"]),
      compute: async (ctx) => [{ language: ctx.partitionKey }],
    });
    const project = defineProject({ assets: [byLanguage] });

    const result = await materialize({ project, partitions: ["en", "de"] });

    expect(result.status).toBe("succeeded");
    expect(result.steps.map((s) => [s.partitionKey, s.status, s.rows])).toEqual([
      ["en", "succeeded", 1],
      ["de", "succeeded", 1],
    ]);
    expect(await result.values.get("texts", "en")).toEqual([{ language: "en" }]);
    expect(await result.values.get("texts", "de")).toEqual([{ language: "de" }]);
    await expect(result.values.get("texts")).rejects.toMatchObject({ code: "bad_usage" });
    await expect(result.values.get("texts", "fr")).rejects.toMatchObject({ code: "bad_usage" });
  });

  it("rejects a bad selection with a StrataError and its stable code", async () => {
    const project = inferenceProject(sim, "bad-selection", 1);

    const thrown = await materialize({ project, select: "nope/nothing" }).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(thrown).toBeInstanceOf(StrataError);
    expect((thrown as StrataError).code).toBe("empty_selection");
    await expect(materialize({ project, select: "raw/documents+(" })).rejects.toMatchObject({
      code: "bad_selection",
    });
  });

  it("reports an asset that throws as a failed step and skips what depends on it", async () => {
    const broken = asset({
      key: "broken",
      compute: async (): Promise<Doc[]> => {
        throw new Error("the source is unreachable");
      },
    });
    const after = asset({ key: "after", deps: { broken }, compute: async () => [{ ok: true }] });
    const fine = asset({ key: "fine", compute: async () => [{ ok: true }] });

    const result = await materialize({ project: defineProject({ assets: [broken, after, fine] }) });

    expect(result.status).toBe("failed");
    const byKey = Object.fromEntries(result.steps.map((s) => [s.assetKey, s]));
    expect(byKey.broken?.status).toBe("failed");
    expect(byKey.broken?.error).toContain("the source is unreachable");
    expect(byKey.after?.status).toBe("skipped");
    expect(byKey.fine?.status).toBe("succeeded");
    expect(result.error).toContain('"broken"');
    expect(await result.values.get("broken")).toBeUndefined();
    expect(await result.values.get("fine")).toEqual([{ ok: true }]);
  });
});

describe.each(BACKENDS)("resumeRun on %s", (backend) => {
  let sim: Simulator;
  let store: TestStore;
  let storage: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, latencyMs: 30 });
    store = await createTestStore(backend);
    storage = await createTempDir("strata-facade-");
  });
  afterAll(async () => {
    await sim?.close();
    await store?.dispose();
    await storage?.remove();
  });

  /** Resumes `run` of `project` on this test's store and storage. */
  const resumeIn = (project: ReturnType<typeof inferenceProject>, run: string) =>
    resumeRun({ project, store, run, storageDir: storage.path, env: {} });

  /** Billed (not cache-hit) successful calls per document over the given runs. */
  async function billedPerDocument(runIds: ReadonlyArray<string>) {
    const rows = await store.db
      .selectFrom("strata.inference_calls")
      .select(["document_id", (eb) => eb.fn.countAll<number>().as("calls")])
      .where("run_id", "in", runIds)
      .where("status", "=", "succeeded")
      .where("cached_from", "is", null)
      .groupBy("document_id")
      .execute();
    return Object.fromEntries(rows.map((r) => [r.document_id, Number(r.calls)]));
  }

  it("finishes a failed run without paying again for answered documents", async () => {
    let fail = true;
    const project = inferenceProject(sim, `failed-${backend}`, 6, { failAfterInfer: () => fail });
    const billedBefore = sim.ledger().totals.calls;

    const first = await materialize({ project, store, storageDir: storage.path, env: {} });
    expect(first.status).toBe("failed");
    expect(first.steps.map((s) => s.status)).toEqual(["succeeded", "failed"]);
    expect(sim.ledger().totals.calls - billedBefore).toBe(6);

    fail = false;
    const resumed = await resumeIn(project, first.runId);

    expect(resumed.status).toBe("succeeded");
    expect(resumed.runId).not.toBe(first.runId);
    expect(resumed.steps.map((s) => [s.assetKey, s.status, s.rows])).toEqual([
      ["analyses", "succeeded", 6],
    ]);
    // every answer came from the ledger: the endpoint was not called again
    expect(sim.ledger().totals.calls - billedBefore).toBe(6);
    expect(resumed.costUsd).toBe("0");
    const billed = await billedPerDocument([first.runId, resumed.runId]);
    expect(Object.keys(billed)).toHaveLength(6);
    expect(Object.values(billed).every((calls) => calls === 1)).toBe(true);
    expect(await resumed.values.get("analyses")).toHaveLength(6);
    const row = await store.db
      .selectFrom("strata.runs")
      .select(["resumed_from", "status"])
      .where("id", "=", resumed.runId)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ resumed_from: first.runId, status: "succeeded" });
  });

  it("finishes a canceled run, paying only for the documents not yet answered", async () => {
    const project = inferenceProject(sim, `canceled-${backend}`, 24, { maxConcurrency: 2 });
    const billedBefore = sim.ledger().totals.calls;
    const controller = new AbortController();

    const first = await materialize({
      project,
      store,
      storageDir: storage.path,
      env: {},
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.done >= 4) controller.abort(new Error("enough"));
      },
    });
    expect(first.status).toBe("canceled");
    const answeredFirst = await billedPerDocument([first.runId]);
    const paidFirst = Object.keys(answeredFirst).length;
    expect(paidFirst).toBeGreaterThanOrEqual(4);
    expect(paidFirst).toBeLessThan(24);

    const resumed = await resumeIn(project, first.runId);

    expect(resumed.status).toBe("succeeded");
    expect(await resumed.values.get("analyses")).toHaveLength(24);
    const billed = await billedPerDocument([first.runId, resumed.runId]);
    expect(Object.keys(billed)).toHaveLength(24);
    expect(Object.values(billed).every((calls) => calls === 1)).toBe(true);
    // the resume paid only for documents the canceled run had not answered
    const paidAgain = Object.keys(await billedPerDocument([resumed.runId]));
    expect(paidAgain).toHaveLength(24 - paidFirst);
    expect(paidAgain.filter((id) => id in answeredFirst)).toEqual([]);
    expect(sim.ledger().totals.calls - billedBefore).toBeGreaterThanOrEqual(24);
  });

  it("refuses to resume a run that succeeded", async () => {
    const project = inferenceProject(sim, `done-${backend}`, 1);
    const done = await materialize({ project, store, storageDir: storage.path, env: {} });
    expect(done.status).toBe("succeeded");

    await expect(
      resumeRun({ project, store, run: done.runId, storageDir: storage.path }),
    ).rejects.toMatchObject({ code: "run_not_resumable" });
  });
});
