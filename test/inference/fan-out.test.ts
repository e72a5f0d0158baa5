import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { InferResultRow, InferSpec } from "../../src/assets/asset-context.js";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import {
  defineProject,
  type EndpointConfig,
  type ModelConfig,
  type ModelPrice,
} from "../../src/assets/project-definition.js";
import { StrataError } from "../../src/errors.js";
import { stepInference } from "../../src/inference/fan-out.js";
import { InferenceRuntime } from "../../src/inference/inference-runtime.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import type { RunResult } from "../../src/materialize/run-result.js";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import type { SimulatorOptions } from "../../src/sim/simulator-options.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, type Backend, createTestStore, type TestStore } from "../helpers/test-store.js";

// Prices with digits a float would lose: exact decimal math is what the ledger promises.
const SMALL_PRICE: ModelPrice = {
  inputPerMTok: 0.15,
  cachedInputPerMTok: 0.075,
  outputPerMTok: 0.6,
};
const LARGE_PRICE: ModelPrice = {
  inputPerMTok: 1.25,
  cachedInputPerMTok: 0.125,
  outputPerMTok: 10,
};

interface Doc {
  readonly id: string;
  readonly text: string;
}

function docs(count: number, tag: string): Doc[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${tag}-${i}`, text: `${tag} #${i}` }));
}

/** An asset that sends `items` through `ctx.infer` and keeps what it returned. */
function inferAsset<I, O>(
  key: string,
  items: ReadonlyArray<I>,
  spec: InferSpec<I, O>,
  seen: { rows?: InferResultRow<O>[]; error?: unknown } = {},
): AssetDefinition<object> {
  return asset({
    key,
    compute: async (ctx) => {
      try {
        seen.rows = await ctx.infer(items, spec);
        return seen.rows.map((r) => ({
          ...r,
          output: r.output === null ? null : String(r.output),
        }));
      } catch (error) {
        seen.error = error;
        throw error;
      }
    },
  }) as AssetDefinition<object>;
}

/** USD per million tokens as an integer count of 1e-6 USD (the test's own exact pricing). */
function micro(price: number): bigint {
  const [whole = "0", fraction = ""] = String(price).split(".");
  return BigInt(whole + fraction.padEnd(6, "0").slice(0, 6));
}

interface Tokens {
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
}

/** The exact cost of a token count at `price` in 1e-12 USD (micro-USD per MTok × tokens). */
function picosOf(tokens: Tokens, price: ModelPrice): bigint {
  return (
    BigInt(tokens.promptTokens - tokens.cachedTokens) * micro(price.inputPerMTok) +
    BigInt(tokens.cachedTokens) * micro(price.cachedInputPerMTok ?? price.inputPerMTok) +
    BigInt(tokens.completionTokens) * micro(price.outputPerMTok)
  );
}

/** The exact cost of a token count at `price`, as a plain decimal string. */
function priceByHand(tokens: Tokens, price: ModelPrice): string {
  return picosToDecimal(picosOf(tokens, price));
}

function picosToDecimal(picos: bigint): string {
  const digits = picos.toString().padStart(13, "0");
  const fraction = digits.slice(-12).replace(/0+$/, "");
  return `${digits.slice(0, -12)}${fraction === "" ? "" : `.${fraction}`}`;
}

/** `0.500` → `0.5`, `2.000` → `2`: decimal strings compared by value. */
function plain(decimal: string): string {
  return decimal.includes(".") ? decimal.replace(/0+$/, "").replace(/\.$/, "") : decimal;
}

/**
 * Runs `start`, canceling it once `ms` have passed; a canceled run is an error naming `what`
 * (the run is stopped rather than left running against the test's store).
 */
async function within<T>(
  ms: number,
  what: string,
  start: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  try {
    const result = await start(controller.signal);
    if (controller.signal.aborted) throw new Error(`${what} did not finish within ${ms} ms`);
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` every few milliseconds until it returns true or the returned stop is called. */
function watch(check: () => boolean): () => void {
  const timer = setInterval(() => {
    if (check()) clearInterval(timer);
  }, 2);
  return () => clearInterval(timer);
}

interface Harness {
  readonly store: TestStore;
  readonly storageRoot: string;
  sim(options?: SimulatorOptions): Promise<Simulator>;
  run(options: {
    assets: ReadonlyArray<AssetDefinition<object>>;
    endpoints: Readonly<Record<string, EndpointConfig>>;
    models: Readonly<Record<string, ModelConfig>>;
    maxCostUsd?: string | null;
    signal?: AbortSignal;
  }): Promise<RunResult>;
  /** The run's ledger rows, oldest first, without the `dispatched` markers of calls sent. */
  calls(runId: string): Promise<LedgerRow[]>;
}

interface LedgerRow {
  id: number;
  document_id: string;
  model: string;
  provider_model: string;
  status: string;
  attempts: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  cost_usd: string;
  cache_hit: boolean;
  cached_from: number | null;
  request_hash: string;
  error: string | null;
}

/**
 * What the tests of one describe block share: a store and a storage dir (each test's data is its
 * own: its model names, documents and runs), plus the simulators each test starts and stops.
 */
function useHarness(backend: Backend): () => Harness {
  let harness: Harness | undefined;
  let removeDir: (() => Promise<void>) | undefined;
  const sims: Simulator[] = [];

  beforeAll(async () => {
    const store = await createTestStore(backend);
    const dir = await createTempDir("fan-out-test-");
    removeDir = dir.remove;
    harness = makeHarness(store, join(dir.path, ".strata", "storage"), (sim) => sims.push(sim));
  });
  afterEach(async () => {
    for (const sim of sims.splice(0)) await sim.close();
  });
  afterAll(async () => {
    await harness?.store.dispose();
    await removeDir?.();
  });
  return () => harness!;
}

function makeHarness(
  store: TestStore,
  storageRoot: string,
  started: (sim: Simulator) => void,
): Harness {
  return {
    store,
    storageRoot,
    async sim(options = {}) {
      const sim = await startSimulator({ port: 0, ...options });
      started(sim);
      return sim;
    },
    async run({ assets, endpoints, models, maxCostUsd = null, signal }) {
      const definition = defineProject({ assets, endpoints, models });
      const graph = AssetGraph.fromAssets(definition.assets);
      const plan = planMaterialization(graph, { selection: "*" });
      const runtime = new InferenceRuntime({
        project: definition,
        db: store.db,
        env: {},
        maxCostUsd,
      });
      try {
        return await executeRun({
          project: { definition, graph },
          store,
          plan,
          storageRoot,
          maxCostUsd,
          ...(signal !== undefined ? { signal } : {}),
          inference: (step) => stepInference(runtime, step),
        });
      } finally {
        await runtime.close();
      }
    },
    async calls(runId) {
      const { rows } = await sql<LedgerRow>`
        select id::int as id, document_id, model, provider_model, status, attempts,
               prompt_tokens::int as prompt_tokens, cached_tokens::int as cached_tokens,
               completion_tokens::int as completion_tokens, trim_scale(cost_usd)::text as cost_usd,
               cache_hit, cached_from::int as cached_from, request_hash, error
        from strata.inference_calls where run_id = ${runId} and status <> 'dispatched'
        order by id`.execute(store.db);
      return rows;
    },
  };
}

/** Sums of the ledger per provider model, shaped like the simulator's bill. */
async function ledgerByProviderModel(store: TestStore, runIds: ReadonlyArray<string>) {
  const { rows } = await sql<{
    provider_model: string;
    calls: number;
    prompt: string;
    cached: string;
    completion: string;
    cost: string;
  }>`
    select provider_model,
           (count(*) filter (where prompt_tokens > 0))::int as calls,
           sum(prompt_tokens)::text as prompt, sum(cached_tokens)::text as cached,
           sum(completion_tokens)::text as completion, trim_scale(sum(cost_usd))::text as cost
    from strata.inference_calls where run_id = any(${runIds}::text[])
    group by provider_model order by provider_model`.execute(store.db);
  return Object.fromEntries(
    rows.map((r) => [
      r.provider_model,
      {
        bill: {
          calls: r.calls,
          promptTokens: Number(r.prompt),
          cachedTokens: Number(r.cached),
          completionTokens: Number(r.completion),
        },
        cost: r.cost,
      },
    ]),
  );
}

describe.each(BACKENDS)("ctx.infer's cost ledger on %s", (backend) => {
  const harness = useHarness(backend);

  it("reconciles exactly with the endpoint's bill through 500s and 429s", async () => {
    const h = harness();
    const sim = await h.sim({ errorRate: 0.1, latencyMs: 2, seed: 7 });
    // A tight requests-per-minute limit for a while mid-run: a few percent of the requests get
    // a 429, which strata must retry (after retry-after) without losing a billed token.
    let throttled = false;
    let firstRejectionAt = 0;
    const stop = watch(() => {
      const { requests } = sim.ledger();
      if (!throttled && requests.total >= 400) {
        sim.setOptions({ rateLimitRpm: 120 });
        throttled = true;
      }
      if (firstRejectionAt === 0 && requests.rateLimited > 0) firstRejectionAt = Date.now();
      if (
        firstRejectionAt !== 0 &&
        (requests.rateLimited >= 100 || Date.now() - firstRejectionAt > 3_000)
      ) {
        sim.setOptions({ rateLimitRpm: 0 });
        return true;
      }
      return false;
    });
    const spec = (model: string): InferSpec<Doc, string> => ({
      model,
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: `Summarize ${d.text}` }],
      params: { max_tokens: 48, temperature: 0 },
    });
    let result: RunResult;
    try {
      result = await within(50_000, "the run through 500s and 429s", (signal) =>
        h.run({
          signal,
          assets: [
            inferAsset("small/answers", docs(1200, "recon-small"), spec("small")),
            inferAsset("large/answers", docs(800, "recon-large"), spec("large")),
          ],
          endpoints: { sim: { baseURL: sim.url, maxConcurrency: 64 } },
          models: {
            small: { endpoint: "sim", name: "recon-small", price: SMALL_PRICE, maxAttempts: 30 },
            large: { endpoint: "sim", name: "recon-large", price: LARGE_PRICE, maxAttempts: 30 },
          },
        }),
      );
    } finally {
      stop();
    }

    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    const bill = sim.ledger();
    console.info(
      `reconciliation on ${backend}: ${bill.requests.total} requests, ${bill.requests.errors} 500s, ` +
        `${bill.requests.rateLimited} 429s, ${bill.totals.calls} billed`,
    );
    // the faults really happened
    expect(bill.requests.errors).toBeGreaterThan(100);
    expect(bill.requests.rateLimited).toBeGreaterThanOrEqual(20);
    expect(bill.totals.calls).toBe(2000);

    const ledger = await ledgerByProviderModel(h.store, [result.runId]);
    expect(Object.keys(ledger)).toEqual(["recon-large", "recon-small"]);
    expect(ledger["recon-small"]!.bill).toEqual(bill.models["recon-small"]);
    expect(ledger["recon-large"]!.bill).toEqual(bill.models["recon-large"]);
    const small = priceByHand(bill.models["recon-small"]!, SMALL_PRICE);
    const large = priceByHand(bill.models["recon-large"]!, LARGE_PRICE);
    expect(ledger["recon-small"]!.cost).toBe(small);
    expect(ledger["recon-large"]!.cost).toBe(large);

    // the run's total, summed by Postgres, equals the hand-priced bill as a numeric
    const total = picosToDecimal(
      picosOf(bill.models["recon-small"]!, SMALL_PRICE) +
        picosOf(bill.models["recon-large"]!, LARGE_PRICE),
    );
    const { rows } = await sql<{ equal: boolean; total: string }>`
      select sum(cost_usd) = ${total}::numeric as equal, trim_scale(sum(cost_usd))::text as total
      from strata.inference_calls where run_id = ${result.runId}`.execute(h.store.db);
    expect(rows[0]).toEqual({ equal: true, total });
    // and the steps report the same exact totals
    const bySteps = Object.fromEntries(result.steps.map((s) => [s.assetKey, plain(s.costUsd)]));
    expect(bySteps).toEqual({ "small/answers": small, "large/answers": large });
  }, 60_000);

  it("prices cached prompt tokens at the cached-input rate on every row", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 1 });
    // a long shared system message: the endpoint's prefix cache serves it after the first call
    const policy = Array.from(
      { length: 260 },
      (_, i) => `Clause ${i}: reviewers must cite the paragraph they object to.`,
    ).join(" ");
    const seen: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [
        inferAsset(
          "reviews",
          docs(24, "cached"),
          {
            model: "small",
            id: (d) => d.id,
            messages: (d) => [
              { role: "system", content: policy },
              { role: "user", content: `Review ${d.text}` },
            ],
            params: { max_tokens: 32 },
          },
          seen,
        ),
      ],
      endpoints: { sim: { baseURL: sim.url, maxConcurrency: 2 } },
      models: { small: { endpoint: "sim", name: "cached-small", price: SMALL_PRICE } },
    });
    expect(result.status).toBe("succeeded");

    const { rows } = await sql<{ rows: number; cached_rows: number; wrong: number }>`
      select count(*)::int as rows,
             (count(*) filter (where cached_tokens > 0))::int as cached_rows,
             (count(*) filter (where cost_usd <> ((prompt_tokens - cached_tokens) * 0.15
                                                 + cached_tokens * 0.075
                                                 + completion_tokens * 0.6) / 1000000))::int as wrong
      from strata.inference_calls
      where run_id = ${result.runId} and status <> 'dispatched'`.execute(h.store.db);
    expect(rows[0]!.rows).toBe(24);
    expect(rows[0]!.cached_rows).toBeGreaterThanOrEqual(20);
    expect(rows[0]!.wrong).toBe(0);

    const calls = await h.calls(result.runId);
    const bill = sim.ledger().models["cached-small"]!;
    expect(calls.reduce((n, c) => n + c.cached_tokens, 0)).toBe(bill.cachedTokens);
    expect(bill.cachedTokens).toBeGreaterThan(20 * 1024);
    // each document's returned cost is its row's exact cost, hand-priced from its tokens
    const byDoc = new Map(calls.map((c) => [c.document_id, c]));
    for (const row of seen.rows!) {
      const call = byDoc.get(row.id)!;
      expect(row.cached_tokens).toBe(call.cached_tokens);
      expect(plain(row.cost_usd)).toBe(call.cost_usd);
      expect(call.cost_usd).toBe(
        priceByHand(
          {
            promptTokens: call.prompt_tokens,
            cachedTokens: call.cached_tokens,
            completionTokens: call.completion_tokens,
          },
          SMALL_PRICE,
        ),
      );
    }
  });

  it("keeps the tokens of an answer whose parse failed, and fails only that document", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 1 });
    const bad = new Set(["parse-3", "parse-11", "parse-17"]);
    const spec = (maxFailures: number): InferSpec<Doc, string> => ({
      model: "small",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: `Classify ${d.text}` }],
      params: { max_tokens: 24 },
      parse: (text, d) => {
        if (bad.has(d.id)) throw new Error(`no label in "${text.slice(0, 12)}"`);
        return text.toUpperCase();
      },
      maxFailures,
    });
    const endpoints = { sim: { baseURL: sim.url, maxConcurrency: 8 } };
    const models = { small: { endpoint: "sim", name: "parse-small", price: SMALL_PRICE } };

    const seen: { rows?: InferResultRow<string>[] } = {};
    const tolerant = await h.run({
      assets: [inferAsset("labels", docs(20, "parse"), spec(3), seen)],
      endpoints,
      models,
    });
    expect(tolerant.status).toBe("succeeded");
    const failedRows = seen.rows!.filter((r) => r.status === "failed");
    expect(failedRows.map((r) => r.id).sort()).toEqual([...bad].sort());
    for (const row of failedRows) {
      expect(row.error).toMatch(/^parse failed: no label in/);
      expect(row.prompt_tokens).toBeGreaterThan(0);
      expect(row.completion_tokens).toBeGreaterThan(0);
      expect(row.cost_usd).not.toBe("0");
    }
    const calls = await h.calls(tolerant.runId);
    const failedCalls = calls.filter((c) => c.status === "failed");
    expect(failedCalls.map((c) => c.document_id).sort()).toEqual([...bad].sort());
    for (const call of failedCalls) {
      expect(call.prompt_tokens).toBeGreaterThan(0);
      expect(call.completion_tokens).toBeGreaterThan(0);
      expect(call.error).toMatch(/parse failed/);
    }
    // the endpoint billed all 20 calls, and the ledger holds all 20
    expect(sim.ledger().totals.calls).toBe(20);
    let ledger = await ledgerByProviderModel(h.store, [tolerant.runId]);
    expect(ledger["parse-small"]!.bill).toEqual(sim.ledger().models["parse-small"]);

    // With maxFailures 0 the step fails, and what the calls cost stays on the ledger.
    sim.resetLedger();
    const strict = await h.run({
      assets: [inferAsset("labels", docs(20, "parse"), spec(0))],
      endpoints,
      models,
    });
    expect(strict.status).toBe("failed");
    expect(strict.error).toContain("3 of 20 documents failed, more than maxFailures (0)");
    // the 17 good answers came from the ledger's cache; the 3 bad ones were paid again
    expect(sim.ledger().totals.calls).toBe(3);
    ledger = await ledgerByProviderModel(h.store, [strict.runId]);
    expect(ledger["parse-small"]!.bill).toEqual(sim.ledger().models["parse-small"]);
    const step = strict.steps[0]!;
    expect(step.status).toBe("failed");
    expect(step.promptTokens).toBe(sim.ledger().totals.promptTokens);
    expect(plain(step.costUsd)).toBe(ledger["parse-small"]!.cost);
  });

  it("answers a repeated materialization from the ledger's cache without paying again", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 1 });
    const items = docs(50, "cache");
    const spec: InferSpec<Doc, string> = {
      model: "small",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: `Translate ${d.text}` }],
      params: { max_tokens: 32, temperature: 0 },
    };
    const setupRun = (list: ReadonlyArray<Doc>, seen: { rows?: InferResultRow<string>[] }) =>
      h.run({
        assets: [inferAsset("translations", list, spec, seen)],
        endpoints: { sim: { baseURL: sim.url, maxConcurrency: 16 } },
        models: { small: { endpoint: "sim", name: "cache-small", price: SMALL_PRICE } },
      });

    const first: { rows?: InferResultRow<string>[] } = {};
    const run1 = await setupRun(items, first);
    expect(run1.status).toBe("succeeded");
    const billAfterFirst = sim.ledger();
    expect(billAfterFirst.totals.calls).toBe(50);

    const second: { rows?: InferResultRow<string>[] } = {};
    const run2 = await setupRun(items, second);
    expect(run2.status).toBe("succeeded");
    // not a single request reached the endpoint
    expect(sim.ledger()).toEqual(billAfterFirst);
    expect(run2.steps[0]!.costUsd).toBe("0");
    expect(run2.steps[0]!.promptTokens).toBe(0);
    expect(second.rows!.map((r) => r.output)).toEqual(first.rows!.map((r) => r.output));
    expect(second.rows!.every((r) => r.cost_usd === "0" && r.prompt_tokens === 0)).toBe(true);

    const paid = new Map((await h.calls(run1.runId)).map((c) => [c.document_id, c]));
    const hits = await h.calls(run2.runId);
    expect(hits).toHaveLength(50);
    for (const hit of hits) {
      const payer = paid.get(hit.document_id)!;
      expect(hit).toMatchObject({
        status: "succeeded",
        cache_hit: true,
        prompt_tokens: 0,
        cached_tokens: 0,
        completion_tokens: 0,
        cost_usd: "0",
        cached_from: payer.id,
        request_hash: payer.request_hash,
      });
      expect(payer.cache_hit).toBe(false);
      expect(payer.prompt_tokens).toBeGreaterThan(0);
    }

    // Editing one document's prompt pays for that document only.
    const edited = items.map((d) =>
      d.id === "cache-7" ? { ...d, text: `${d.text} (revised)` } : d,
    );
    const run3 = await setupRun(edited, {});
    expect(run3.status).toBe("succeeded");
    expect(sim.ledger().totals.calls).toBe(51);
    expect(sim.ledger().requests.total).toBe(billAfterFirst.requests.total + 1);
    const third = await h.calls(run3.runId);
    expect(third.filter((c) => !c.cache_hit).map((c) => c.document_id)).toEqual(["cache-7"]);
    expect(third.filter((c) => c.cache_hit)).toHaveLength(49);
  });

  it("stops at --max-cost with budget_exceeded and says how to resume", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 20 });
    const maxConcurrency = 16;
    const maxTokens = 64;
    const price: ModelPrice = { inputPerMTok: 1, cachedInputPerMTok: 0.5, outputPerMTok: 4 };
    const cap = "0.01";
    const result = await h.run({
      assets: [
        inferAsset("budgeted", docs(300, "budget"), {
          model: "pricey",
          id: (d) => d.id,
          messages: (d) => [{ role: "user", content: `Explain ${d.text} in detail` }],
          params: { max_tokens: maxTokens },
        }),
      ],
      endpoints: { sim: { baseURL: sim.url, maxConcurrency } },
      models: { pricey: { endpoint: "sim", name: "budget-model", price } },
      maxCostUsd: cap,
    });
    expect(result.status).toBe("budget_exceeded");
    const calls = await h.calls(result.runId);
    const { rows } = await sql<{ spent: string; over: boolean; max_prompt: number }>`
      select trim_scale(sum(cost_usd))::text as spent, sum(cost_usd) > ${cap}::numeric as over,
             max(prompt_tokens)::int as max_prompt
      from strata.inference_calls where run_id = ${result.runId}`.execute(h.store.db);
    const { spent, max_prompt } = rows[0]!;
    // one call's upper bound: its prompt plus max_tokens of output
    const oneCall = priceByHand(
      { promptTokens: max_prompt, cachedTokens: 0, completionTokens: maxTokens },
      price,
    );
    const { rows: bound } = await sql<{ within: boolean }>`
      select ${spent}::numeric <= ${cap}::numeric + ${maxConcurrency} * ${oneCall}::numeric as within
    `.execute(h.store.db);
    console.info(
      `--max-cost ${cap} on ${backend}: spent ${spent} in ${calls.filter((c) => c.prompt_tokens > 0).length} calls; ` +
        `one call's upper bound ${oneCall}, in flight at most ${maxConcurrency}`,
    );
    expect(bound[0]!.within).toBe(true);
    expect(Number(spent)).toBeGreaterThan(0.005);
    // the run stopped early, and every call the endpoint billed is on the ledger
    expect(sim.ledger().totals.calls).toBeLessThan(300);
    expect(calls.filter((c) => c.prompt_tokens > 0)).toHaveLength(sim.ledger().totals.calls);
    expect(result.error).toContain(`strata runs resume ${result.runId}`);
    expect(result.error).toContain(`spent $${spent}`);
    const run = await h.store.db
      .selectFrom("strata.runs")
      .select(["status", "error", sql<string>`max_cost_usd::text`.as("max_cost")])
      .where("id", "=", result.runId)
      .executeTakeFirstOrThrow();
    expect(run.status).toBe("budget_exceeded");
    expect(plain(run.max_cost)).toBe(cap);
    expect(run.error).toContain(`strata runs resume ${result.runId}`);
  });

  it("retries a body that is not JSON and never records it as a free success", async () => {
    const h = harness();
    const sim = await h.sim({ malformedRate: 1, latencyMs: 1 });
    const stop = watch(() => {
      if (sim.ledger().requests.malformed < 20) return false;
      sim.setOptions({ malformedRate: 0 });
      return true;
    });
    let result: RunResult;
    try {
      result = await h.run({
        assets: [
          inferAsset("malformed", docs(40, "malformed"), {
            model: "small",
            id: (d) => d.id,
            messages: (d) => [{ role: "user", content: `Tag ${d.text}` }],
            params: { max_tokens: 16 },
          }),
        ],
        endpoints: { sim: { baseURL: sim.url, maxConcurrency: 8 } },
        models: {
          small: { endpoint: "sim", name: "malformed-small", price: SMALL_PRICE, maxAttempts: 10 },
        },
      });
    } finally {
      stop();
    }
    expect(result.status).toBe("succeeded");
    expect(sim.ledger().requests.malformed).toBeGreaterThanOrEqual(20);
    const calls = await h.calls(result.runId);
    const succeeded = calls.filter((c) => c.status === "succeeded");
    expect(succeeded).toHaveLength(40);
    expect(succeeded.filter((c) => c.prompt_tokens === 0 || c.cost_usd === "0")).toEqual([]);
    expect(calls.filter((c) => c.status === "failed" && c.prompt_tokens > 0)).toEqual([]);
    const ledger = await ledgerByProviderModel(h.store, [result.runId]);
    expect(ledger["malformed-small"]!.bill).toEqual(sim.ledger().models["malformed-small"]);
  });
});

describe("ctx.infer's failure handling", () => {
  const harness = useHarness("pglite");
  const spec = (
    model: string,
    extra: Partial<InferSpec<Doc, string>> = {},
  ): InferSpec<Doc, string> => ({
    model,
    id: (d) => d.id,
    messages: (d) => [{ role: "user", content: `Answer ${d.text}` }],
    params: { max_tokens: 16 },
    ...extra,
  });

  it("fails fast with 'out of quota' on insufficient_quota, and a fallback endpoint still answers", async () => {
    const h = harness();
    const broke = await h.sim({ quotaExhausted: true, latencyMs: 5 });
    const healthy = await h.sim({ latencyMs: 1 });
    const maxConcurrency = 16;
    const endpoints = {
      broke: { baseURL: broke.url, maxConcurrency },
      healthy: { baseURL: healthy.url, maxConcurrency },
    };
    const models = {
      main: { endpoint: "broke", name: "quota-main", price: SMALL_PRICE },
      spare: { endpoint: "healthy", name: "quota-spare", price: SMALL_PRICE },
    };
    const seen: { error?: unknown } = {};
    const result = await h.run({
      assets: [inferAsset("quota", docs(500, "quota"), spec("main"), seen)],
      endpoints,
      models,
    });
    expect(result.status).toBe("failed");
    expect(result.error).toContain("out of quota");
    expect(seen.error).toBeInstanceOf(StrataError);
    expect((seen.error as StrataError).code).toBe("insufficient_quota");
    // not retried, and not sent for the other documents once the account was known to be broke
    expect(broke.ledger().requests.quotaExhausted).toBeLessThanOrEqual(2 * maxConcurrency);
    const sent = await h.calls(result.runId);
    expect(sent.length).toBe(broke.ledger().requests.quotaExhausted);
    expect(sent.every((c) => c.status === "failed" && c.attempts === 1)).toBe(true);

    const rows: { rows?: InferResultRow<string>[] } = {};
    const rescued = await h.run({
      assets: [
        inferAsset("quota", docs(100, "quota"), spec("main", { fallback: ["spare"] }), rows),
      ],
      endpoints,
      models,
    });
    expect(rescued.status).toBe("succeeded");
    expect(new Set(rows.rows!.map((r) => `${r.status}:${r.model}`))).toEqual(
      new Set(["succeeded:spare"]),
    );
    expect(healthy.ledger().totals.calls).toBe(100);
  });

  it("honours retry-after: a rate-limited call waits as told and then succeeds", async () => {
    const h = harness();
    // a bucket of 30 requests refilled at one every 2 s: the 31st waits about 2 s
    const sim = await h.sim({ rateLimitRpm: 30 });
    const seen: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [inferAsset("limited", docs(31, "limited"), spec("small"), seen)],
      endpoints: { sim: { baseURL: sim.url, maxConcurrency: 2 } },
      models: { small: { endpoint: "sim", name: "limited-small", price: SMALL_PRICE } },
    });
    expect(result.status).toBe("succeeded");
    expect(seen.rows!.every((r) => r.status === "succeeded")).toBe(true);
    expect(sim.ledger().totals.calls).toBe(31);
    // waiting out retry-after (about 2 s, until the bucket refills) takes one 429; backing off
    // blindly (250 ms, 500 ms, ...) asks again before the refill and takes several
    expect(sim.ledger().requests.rateLimited).toBeGreaterThanOrEqual(1);
    expect(sim.ledger().requests.rateLimited).toBeLessThanOrEqual(2);
    const calls = await h.calls(result.runId);
    expect(Math.max(...calls.map((c) => c.attempts))).toBe(2);
  });

  it("lets up to maxFailures documents fail, and fails the step past that", async () => {
    const h = harness();
    const down = await h.sim({ errorRate: 1 });
    const endpoints = { down: { baseURL: down.url, maxConcurrency: 8 } };
    const models = {
      flaky: { endpoint: "down", name: "down-model", price: SMALL_PRICE, maxAttempts: 2 },
    };

    const seen: { rows?: InferResultRow<string>[] } = {};
    const tolerant = await h.run({
      assets: [inferAsset("flaky", docs(8, "flaky"), spec("flaky", { maxFailures: 8 }), seen)],
      endpoints,
      models,
    });
    expect(tolerant.status).toBe("succeeded");
    expect(seen.rows).toHaveLength(8);
    for (const row of seen.rows!) {
      expect(row).toMatchObject({ status: "failed", model: "flaky", output: null, cost_usd: "0" });
      expect(row.error).toContain("500");
    }
    const calls = await h.calls(tolerant.runId);
    expect(calls).toHaveLength(8);
    expect(
      calls.every((c) => c.status === "failed" && c.prompt_tokens === 0 && c.cost_usd === "0"),
    ).toBe(true);
    expect(down.ledger().totals.calls).toBe(0);
    expect(down.ledger().requests.errors).toBe(16);

    const strict = await h.run({
      assets: [inferAsset("flaky", docs(8, "flaky"), spec("flaky", { maxFailures: 0 }))],
      endpoints,
      models,
    });
    expect(strict.status).toBe("failed");
    expect(strict.error).toContain("8 of 8 documents failed, more than maxFailures (0)");
  });

  it("falls back to the next model when the first fails for good", async () => {
    const h = harness();
    const down = await h.sim({ errorRate: 1 });
    const up = await h.sim({ latencyMs: 1 });
    const seen: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [
        inferAsset("rescued", docs(10, "rescued"), spec("primary", { fallback: ["backup"] }), seen),
      ],
      endpoints: {
        down: { baseURL: down.url, maxConcurrency: 8 },
        up: { baseURL: up.url, maxConcurrency: 8 },
      },
      models: {
        primary: { endpoint: "down", name: "primary-model", price: LARGE_PRICE, maxAttempts: 2 },
        backup: { endpoint: "up", name: "backup-model", price: SMALL_PRICE },
      },
    });
    expect(result.status).toBe("succeeded");
    expect(seen.rows!.map((r) => r.model)).toEqual(Array(10).fill("backup"));
    expect(seen.rows!.every((r) => r.status === "succeeded" && r.output !== null)).toBe(true);
    const calls = await h.calls(result.runId);
    const answered = calls.filter((c) => c.status === "succeeded");
    expect(answered).toHaveLength(10);
    expect(new Set(answered.map((c) => `${c.model}/${c.provider_model}`))).toEqual(
      new Set(["backup/backup-model"]),
    );
    expect(up.ledger().totals.calls).toBe(10);
    expect(down.ledger().totals.calls).toBe(0);
  });

  it("rejects duplicate and missing document ids before calling anything", async () => {
    const h = harness();
    const sim = await h.sim();
    const endpoints = { sim: { baseURL: sim.url } };
    const models = { small: { endpoint: "sim", name: "ids-small" } };

    const duplicated: { error?: unknown } = {};
    const items = [...docs(5, "ids"), { id: "ids-2", text: "again" }];
    const dup = await h.run({
      assets: [inferAsset("ids", items, spec("small"), duplicated)],
      endpoints,
      models,
    });
    expect(dup.status).toBe("failed");
    expect(duplicated.error).toBeInstanceOf(StrataError);
    expect((duplicated.error as StrataError).code).toBe("bad_value");
    expect((duplicated.error as Error).message).toContain('"ids-2"');
    expect(dup.error).toContain('"ids-2"');

    const missing: { error?: unknown } = {};
    const noId = await h.run({
      assets: [
        inferAsset(
          "ids",
          [{ id: "a", text: "a" }, { text: "b" } as unknown as Doc],
          spec("small"),
          missing,
        ),
      ],
      endpoints,
      models,
    });
    expect(noId.status).toBe("failed");
    expect((missing.error as StrataError).code).toBe("bad_value");
    expect((missing.error as Error).message).toMatch(/document 1 .*id/);

    expect(sim.ledger().requests.total).toBe(0);
    expect(await h.calls(dup.runId)).toEqual([]);
    expect(await h.calls(noId.runId)).toEqual([]);
  });
});

/** V8's own collector, for tests that check what a step keeps alive. */
function collectGarbage(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

describe("ctx.infer's memory", () => {
  const harness = useHarness("pglite");

  it("sends calls to a plain-HTTP endpoint through its own transport, not the global fetch", async () => {
    const h = harness();
    const sim = await h.sim();
    const globalFetch = globalThis.fetch;
    globalThis.fetch = () => Promise.reject(new Error("the global fetch was used"));
    try {
      const seen: { rows?: InferResultRow<string>[] } = {};
      const result = await h.run({
        assets: [
          inferAsset(
            "transport",
            docs(5, "transport"),
            {
              model: "small",
              id: (d) => d.id,
              messages: (d) => [{ role: "user", content: d.text }],
              params: { max_tokens: 8 },
            },
            seen,
          ),
        ],
        endpoints: { sim: { baseURL: sim.url } },
        models: { small: { endpoint: "sim", name: "transport-small", maxAttempts: 1 } },
      });
      expect(result.status).toBe("succeeded");
      expect(seen.rows?.map((r) => r.status)).toEqual(Array(5).fill("succeeded"));
    } finally {
      globalThis.fetch = globalFetch;
    }
  });

  it("keeps the messages of documents in flight only, not those of answered documents", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 5 });
    const gc = collectGarbage();
    // Every messages() result of the first 100 documents, held weakly.
    const built = new Map<string, WeakRef<object>[]>();
    const items = docs(300, "memory");
    const early = items.slice(0, 100);
    let alive: number | undefined;
    const result = await h.run({
      assets: [
        inferAsset("memory", items, {
          model: "small",
          id: (d) => d.id,
          messages: (d) => {
            const messages = [{ role: "user" as const, content: `Summarize ${d.text}` }];
            built.set(d.id, [...(built.get(d.id) ?? []), new WeakRef(messages)]);
            return messages;
          },
          params: { max_tokens: 8 },
          parse: (text, d) => {
            // Late in the step, with about 100 documents still to go: the first 100 are answered.
            if (d.id === "memory-200") {
              setImmediate(() => {
                gc();
                alive = early.filter((e) =>
                  built.get(e.id)?.some((r) => r.deref() !== undefined),
                ).length;
              });
            }
            return text;
          },
        }),
      ],
      endpoints: { sim: { baseURL: sim.url, maxConcurrency: 4 } },
      models: { small: { endpoint: "sim", name: "memory-small" } },
    });
    expect(result.status).toBe("succeeded");
    expect(built.get("memory-0")?.length).toBeGreaterThan(0);
    expect(alive).toBe(0);
  });
});

describe.each(BACKENDS)("ctx.infer's identical requests within a run on %s", (backend) => {
  const harness = useHarness(backend);

  /** The run's ledger rows checked as 1 paying row per request and cache hits pointing at it. */
  async function expectOnePaidRowPerRequest(h: Harness, runId: string, requests: number) {
    const calls = await h.calls(runId);
    const paid = calls.filter((c) => !c.cache_hit);
    const hits = calls.filter((c) => c.cache_hit);
    expect(new Set(paid.map((c) => c.request_hash)).size).toBe(requests);
    expect(paid).toHaveLength(requests);
    const payers = new Map(paid.map((c) => [c.id, c]));
    for (const hit of hits) {
      expect(hit).toMatchObject({
        status: "succeeded",
        prompt_tokens: 0,
        cached_tokens: 0,
        completion_tokens: 0,
        cost_usd: "0",
      });
      const payer = payers.get(hit.cached_from!);
      expect(payer?.request_hash).toBe(hit.request_hash);
      expect(payer?.status).toBe("succeeded");
    }
    return { paid, hits };
  }

  it("sends a request made by many documents of one step once, and answers the rest from that call", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 5 });
    // 122 chunks, 27 distinct prompts among them
    const items = Array.from({ length: 122 }, (_, i) => ({
      id: `chunk-${i}`,
      text: `repeated prompt ${i % 27}`,
    }));
    const seen: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [
        inferAsset(
          "chunks",
          items,
          {
            model: "small",
            id: (d) => d.id,
            messages: (d) => [{ role: "user", content: `Summarize ${d.text}` }],
            params: { max_tokens: 24, temperature: 0 },
          },
          seen,
        ),
      ],
      endpoints: { sim: { baseURL: sim.url, maxConcurrency: 16 } },
      models: { small: { endpoint: "sim", name: "shared-small", price: SMALL_PRICE } },
    });
    expect(result.status).toBe("succeeded");
    expect(sim.ledger().requests.total).toBe(27);
    expect(sim.ledger().totals.calls).toBe(27);
    const { hits } = await expectOnePaidRowPerRequest(h, result.runId, 27);
    expect(hits).toHaveLength(95);
    // every document got the answer to its own prompt
    const byText = new Map<string, string>();
    for (const [i, row] of seen.rows!.entries()) {
      expect(row.status).toBe("succeeded");
      const text = items[i]!.text;
      byText.set(text, byText.get(text) ?? String(row.output));
      expect(row.output).toBe(byText.get(text));
    }
    expect(byText.size).toBe(27);
    // the ledger reconciles with the endpoint's bill, and the step's tokens with both
    const ledger = await ledgerByProviderModel(h.store, [result.runId]);
    expect(ledger["shared-small"]!.bill).toEqual(sim.ledger().models["shared-small"]);
    expect(result.steps[0]!.promptTokens).toBe(sim.ledger().totals.promptTokens);
    expect(seen.rows!.reduce((n, r) => n + r.completion_tokens, 0)).toBe(
      sim.ledger().totals.completionTokens,
    );
  });

  it("sends a request that two assets of one run both make once", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 20 });
    const spec: InferSpec<Doc, string> = {
      model: "small",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: `Describe ${d.text.replace(/^\w+/, "")}` }],
      params: { max_tokens: 16 },
    };
    const left: { rows?: InferResultRow<string>[] } = {};
    const right: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [
        inferAsset("twins/left", docs(30, "left"), spec, left),
        inferAsset("twins/right", docs(30, "right"), spec, right),
      ],
      endpoints: { sim: { baseURL: sim.url, maxConcurrency: 8 } },
      models: { small: { endpoint: "sim", name: "twins-small", price: SMALL_PRICE } },
    });
    expect(result.status).toBe("succeeded");
    expect(sim.ledger().requests.total).toBe(30);
    const { hits } = await expectOnePaidRowPerRequest(h, result.runId, 30);
    expect(hits).toHaveLength(30);
    expect(right.rows!.map((r) => r.output)).toEqual(left.rows!.map((r) => r.output));
    const ledger = await ledgerByProviderModel(h.store, [result.runId]);
    expect(ledger["twins-small"]!.bill).toEqual(sim.ledger().models["twins-small"]);
  });

  it("fails the documents sharing a failed call with its reason, and shares the fallback's answer", async () => {
    const h = harness();
    const down = await h.sim({ errorRate: 1, latencyMs: 5 });
    const up = await h.sim({ latencyMs: 5 });
    const endpoints = {
      down: { baseURL: down.url, maxConcurrency: 4 },
      up: { baseURL: up.url, maxConcurrency: 4 },
    };
    const models = {
      primary: { endpoint: "down", name: "shared-primary", price: LARGE_PRICE, maxAttempts: 2 },
      backup: { endpoint: "up", name: "shared-backup", price: SMALL_PRICE },
    };
    const same = (prefix: string): InferSpec<Doc, string> => ({
      model: "primary",
      id: (d) => d.id,
      messages: () => [{ role: "user", content: `${prefix}: one question for all` }],
      params: { max_tokens: 16 },
    });

    // no fallback: the one failed call fails every document that made it, with its reason
    const failed: { rows?: InferResultRow<string>[] } = {};
    const alone = await h.run({
      assets: [
        inferAsset("same", docs(10, "alone"), { ...same("alone"), maxFailures: 10 }, failed),
      ],
      endpoints,
      models,
    });
    expect(alone.status).toBe("succeeded");
    expect(down.ledger().requests.total).toBe(2);
    expect(failed.rows!.map((r) => r.status)).toEqual(Array(10).fill("failed"));
    expect(new Set(failed.rows!.map((r) => r.error))).toEqual(new Set([failed.rows![0]!.error]));
    expect(failed.rows![0]!.error).toContain("2 attempts failed");

    // with a fallback: the documents go on to the backup together, which is asked once
    const rescued: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [
        inferAsset(
          "same",
          docs(10, "rescued"),
          { ...same("rescued"), fallback: ["backup"] },
          rescued,
        ),
      ],
      endpoints,
      models,
    });
    expect(result.status).toBe("succeeded");
    expect(down.ledger().requests.total).toBe(4);
    expect(up.ledger().requests.total).toBe(1);
    expect(rescued.rows!.map((r) => `${r.status}:${r.model}`)).toEqual(
      Array(10).fill("succeeded:backup"),
    );
    const calls = await h.calls(result.runId);
    const backup = calls.filter((c) => c.model === "backup");
    expect(backup.filter((c) => !c.cache_hit)).toHaveLength(1);
    expect(backup.filter((c) => c.cache_hit && c.cached_from === backup[0]!.id)).toHaveLength(9);
  });
});

describe("ctx.infer's messages()", () => {
  const harness = useHarness("pglite");

  it("fails a document whose messages() changed between check and send, sends nothing for it and never caches it", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 1 });
    const endpoints = { sim: { baseURL: sim.url, maxConcurrency: 4 } };
    const models = { small: { endpoint: "sim", name: "drift-small", price: SMALL_PRICE } };
    const builds = new Map<string, number>();
    const seen: { rows?: InferResultRow<string>[]; error?: unknown } = {};
    const drifting = await h.run({
      assets: [
        inferAsset(
          "drifting",
          docs(6, "drift"),
          {
            model: "small",
            id: (d) => d.id,
            messages: (d) => {
              // drift-3 counts its builds into its prompt: never the same request twice
              const n = (builds.get(d.id) ?? 0) + 1;
              builds.set(d.id, n);
              const suffix = d.id === "drift-3" ? ` (build ${n})` : "";
              return [{ role: "user", content: `Summarize ${d.text}${suffix}` }];
            },
            params: { max_tokens: 16 },
            maxFailures: 1,
          },
          seen,
        ),
      ],
      endpoints,
      models,
    });
    expect(drifting.status).toBe("succeeded");
    const row = seen.rows!.find((r) => r.id === "drift-3")!;
    expect(row).toMatchObject({ status: "failed", prompt_tokens: 0, cost_usd: "0" });
    expect(row.error).toBe(
      'asset "drifting": messages() of document "drift-3" returned different messages when it was sent than when it was checked; messages() must be deterministic',
    );
    // the other five were sent; nothing was sent or recorded for drift-3
    expect(sim.ledger().requests.total).toBe(5);
    const calls = await h.calls(drifting.runId);
    expect(calls.filter((c) => c.document_id === "drift-3")).toEqual([]);

    // a later asset whose prompt is the one drift-3 was checked with is not answered from the
    // cache with the answer to another prompt: it is sent
    const later = await h.run({
      assets: [
        inferAsset("steady", [{ id: "steady-3", text: "drift #3" }], {
          model: "small",
          id: (d) => d.id,
          messages: (d) => [{ role: "user", content: `Summarize ${d.text} (build 1)` }],
          params: { max_tokens: 16 },
        }),
      ],
      endpoints,
      models,
    });
    expect(later.status).toBe("succeeded");
    expect(sim.ledger().requests.total).toBe(6);
    expect((await h.calls(later.runId)).map((c) => c.cache_hit)).toEqual([false]);

    // with maxFailures 0 the step fails, and its error names the asset and the document
    builds.clear();
    const strict = await h.run({
      assets: [
        inferAsset("drifting", docs(6, "drift"), {
          model: "small",
          id: (d) => d.id,
          messages: (d) => {
            const n = (builds.get(d.id) ?? 0) + 1;
            builds.set(d.id, n);
            return [
              { role: "user", content: `Summarize ${d.text}${d.id === "drift-3" ? ` ${n}` : ""}` },
            ];
          },
          params: { max_tokens: 16 },
        }),
      ],
      endpoints,
      models,
    });
    expect(strict.status).toBe("failed");
    expect(strict.error).toContain('document "drift-3"');
    expect(strict.error).toContain("messages() must be deterministic");
  });

  it("names the document whose messages() threw, when checked and when sent", async () => {
    const h = harness();
    const sim = await h.sim({ latencyMs: 1 });
    const endpoints = { sim: { baseURL: sim.url } };
    const models = { small: { endpoint: "sim", name: "throw-small" } };
    const spec = (throwOnBuild: number): InferSpec<Doc, string> => {
      const builds = new Map<string, number>();
      return {
        model: "small",
        id: (d) => d.id,
        messages: (d) => {
          const n = (builds.get(d.id) ?? 0) + 1;
          builds.set(d.id, n);
          if (d.id === "throw-2" && n === throwOnBuild) throw new Error("no template for this one");
          return [{ role: "user", content: `Answer ${d.text}` }];
        },
        params: { max_tokens: 8 },
      };
    };
    const checked = await h.run({
      assets: [inferAsset("throwing", docs(4, "throw"), spec(1))],
      endpoints,
      models,
    });
    expect(checked.status).toBe("failed");
    expect(checked.error).toContain('document "throw-2"');
    expect(checked.error).toContain("no template for this one");
    expect(sim.ledger().requests.total).toBe(0);

    const sent: { rows?: InferResultRow<string>[] } = {};
    const result = await h.run({
      assets: [inferAsset("throwing", docs(4, "throw"), { ...spec(2), maxFailures: 1 }, sent)],
      endpoints,
      models,
    });
    expect(result.status).toBe("succeeded");
    const row = sent.rows!.find((r) => r.id === "throw-2")!;
    expect(row.status).toBe("failed");
    expect(row.error).toContain('document "throw-2"');
    expect(row.error).toContain("no template for this one");

    // messages that cannot be sent as JSON are refused before anything is sent, naming the document
    const unsendable = await h.run({
      assets: [
        inferAsset("throwing", docs(4, "throw"), {
          ...spec(0),
          messages: (d) => [
            { role: "user", content: d.id === "throw-1" ? (10n as unknown as string) : d.text },
          ],
        }),
      ],
      endpoints,
      models,
    });
    expect(unsendable.status).toBe("failed");
    expect(unsendable.error).toContain('messages() of document "throw-1" returned messages that');
    expect(sim.ledger().requests.total).toBe(3);
  });
});
