import type { Kysely } from "kysely";
import type { Database } from "../../src/store/database.js";

/**
 * A varied cost ledger written straight into `strata.runs`, `strata.materializations` and
 * `strata.inference_calls`, for tests of the cost queries and of `strata costs`.
 *
 * Three runs on three UTC days (the first on 2025-12-31, just before 2026-01-01, the second ten
 * days ago, the third an hour ago), three assets (`analyses` partitioned `en`/`de`, `summaries`,
 * `report`), three models with snapshotted prices (`small`, `large`, and `nano`, whose prices
 * have many decimals so that one document costs about 0.0000002 USD), cached tokens, cache hits
 * pointing at the row that paid (`cached_from`), failed rows (with and without tokens),
 * `dispatched` rows (counted as no call; one followed by its outcome, one lost in flight) and a
 * document id with a quote and a comma.
 *
 * The hand-computed sums below (DESIGN.md's rule, exact decimals) are what the queries must give.
 */
export const SEED_RUNS = {
  alpha: "run-alpha-7f3a",
  beta: "run-beta-9c1d",
  gamma: "run-gamma-2e8b",
} as const;

/** A document id that needs quoting in CSV. */
export const QUOTED_DOCUMENT = 'd"quoted", 1';

/** Exact expected aggregates, trailing zeros trimmed. */
export const SEED_EXPECTED = {
  total: {
    calls: 11,
    cacheHits: 3,
    promptTokens: 2624,
    cachedTokens: 601,
    completionTokens: 249,
    costUsd: "0.00130063580246879",
  },
  byModel: {
    large: {
      calls: 2,
      cacheHits: 0,
      promptTokens: 310,
      cachedTokens: 0,
      completionTokens: 26,
      costUsd: "0.001035",
    },
    nano: {
      calls: 3,
      cacheHits: 1,
      promptTokens: 4,
      cachedTokens: 1,
      completionTokens: 2,
      costUsd: "0.00000023580246879",
    },
    small: {
      calls: 6,
      cacheHits: 2,
      promptTokens: 2310,
      cachedTokens: 600,
      completionTokens: 221,
      costUsd: "0.0002654",
    },
  },
  byRun: {
    [SEED_RUNS.alpha]: "0.00123022345678989",
    [SEED_RUNS.beta]: "0.0000340123456789",
    [SEED_RUNS.gamma]: "0.0000364",
  },
  byAsset: {
    analyses: "0.001264",
    report: "0.0000364",
    summaries: "0.00000023580246879",
  },
} as const;

/** When the seeded rows were written. */
export interface SeededLedger {
  /** 2025-12-31T23:30:00Z: run alpha. */
  readonly day1: Date;
  /** Ten days before `now`: run beta. */
  readonly day2: Date;
  /** An hour before `now`: run gamma (and beta's dispatched row). */
  readonly day3: Date;
}

const PRICES = {
  small: { input: "0.1", cached: "0.01", output: "0.4", provider: "qwen3-8b" },
  large: { input: "2.5", cached: "1.25", output: "10", provider: "qwen3-72b" },
  nano: {
    input: "0.0123456789",
    cached: "0.00123456789",
    output: "0.0987654321",
    provider: "tiny-1b",
  },
} as const;

interface Call {
  readonly run: keyof typeof SEED_RUNS;
  readonly asset: string;
  readonly partition: string | null;
  readonly document: string;
  readonly model: keyof typeof PRICES;
  readonly status?: "succeeded" | "failed" | "dispatched";
  readonly tokens?: readonly [prompt: number, cached: number, completion: number];
  readonly attempts?: number;
  readonly error?: string;
  /** A cache hit answered by the call with this name. */
  readonly cachedFrom?: string;
  readonly at: keyof SeededLedger;
  /** A name for `cachedFrom`. */
  readonly name?: string;
}

const CALLS: ReadonlyArray<Call> = [
  // run alpha, 2025-12-31
  {
    name: "a1",
    run: "alpha",
    asset: "analyses",
    partition: "en",
    document: "doc1",
    model: "small",
    tokens: [1000, 200, 100], // 800 × 0.1 + 200 × 0.01 + 100 × 0.4 = 122 µUSD
    at: "day1",
  },
  {
    run: "alpha",
    asset: "analyses",
    partition: "en",
    document: "doc2",
    model: "small",
    tokens: [500, 0, 50], // 70 µUSD
    at: "day1",
  },
  {
    run: "alpha",
    asset: "analyses",
    partition: "de",
    document: "doc3",
    model: "small",
    status: "failed",
    tokens: [300, 0, 20], // billed although the output failed to parse: 38 µUSD
    error: "the output failed to parse",
    at: "day1",
  },
  {
    run: "alpha",
    asset: "analyses",
    partition: "de",
    document: "doc3",
    model: "large",
    tokens: [300, 0, 25], // the fallback: 750 + 250 = 1000 µUSD
    at: "day1",
  },
  {
    run: "alpha",
    asset: "analyses",
    partition: "de",
    document: "doc4",
    model: "small",
    status: "failed",
    attempts: 3,
    error: "HTTP 500 after 3 attempts",
    at: "day1",
  },
  {
    name: "a6",
    run: "alpha",
    asset: "summaries",
    partition: null,
    document: "all",
    model: "nano",
    tokens: [3, 1, 2], // 0.00000022345678989 USD
    at: "day1",
  },
  // run beta, ten days ago
  {
    run: "beta",
    asset: "analyses",
    partition: "en",
    document: "doc1",
    model: "small",
    cachedFrom: "a1",
    at: "day2",
  },
  {
    run: "beta",
    asset: "analyses",
    partition: "en",
    document: "doc2",
    model: "small",
    tokens: [500, 400, 50], // 10 + 4 + 20 = 34 µUSD
    at: "day2",
  },
  {
    run: "beta",
    asset: "summaries",
    partition: null,
    document: "all",
    model: "nano",
    tokens: [1, 0, 0], // 0.0000000123456789 USD
    at: "day2",
  },
  {
    run: "beta",
    asset: "summaries",
    partition: null,
    document: "all",
    model: "nano",
    status: "failed",
    error: "timeout",
    at: "day2",
  },
  {
    run: "beta",
    asset: "analyses",
    partition: "de",
    document: "doc9",
    model: "small",
    status: "dispatched",
    at: "day3",
  },
  // run gamma, an hour ago
  {
    // the record that the call was sent; its outcome follows on the next row
    run: "gamma",
    asset: "report",
    partition: null,
    document: QUOTED_DOCUMENT,
    model: "large",
    status: "dispatched",
    at: "day3",
  },
  {
    run: "gamma",
    asset: "report",
    partition: null,
    document: QUOTED_DOCUMENT,
    model: "large",
    tokens: [10, 0, 1], // 35 µUSD
    at: "day3",
  },
  {
    run: "gamma",
    asset: "report",
    partition: null,
    document: QUOTED_DOCUMENT,
    model: "small",
    tokens: [10, 0, 1], // 1.4 µUSD
    at: "day3",
  },
  {
    run: "gamma",
    asset: "summaries",
    partition: null,
    document: "all",
    model: "nano",
    cachedFrom: "a6",
    at: "day3",
  },
  {
    run: "gamma",
    asset: "analyses",
    partition: "en",
    document: "doc1",
    model: "small",
    cachedFrom: "a1",
    at: "day3",
  },
];

/**
 * Writes the ledger described above into a migrated database.
 *
 * @example
 * const seeded = await seedCostLedger(store.db);
 */
export async function seedCostLedger(
  db: Kysely<Database>,
  now: Date = new Date(),
): Promise<SeededLedger> {
  const seeded: SeededLedger = {
    day1: new Date("2025-12-31T23:30:00Z"),
    day2: new Date(now.getTime() - 10 * 86_400_000),
    day3: new Date(now.getTime() - 3_600_000),
  };
  const runAt = { alpha: seeded.day1, beta: seeded.day2, gamma: seeded.day3 };
  const runStatus = { alpha: "succeeded", beta: "failed", gamma: "succeeded" } as const;
  await db
    .insertInto("strata.runs")
    .values(
      (Object.keys(SEED_RUNS) as Array<keyof typeof SEED_RUNS>).map((run) => ({
        id: SEED_RUNS[run],
        status: runStatus[run],
        selection: "*",
        started_at: runAt[run],
        finished_at: new Date(runAt[run].getTime() + 60_000),
        error: run === "beta" ? "summaries failed" : null,
        max_cost_usd: null,
        pid: null,
        hostname: null,
        resumed_from: null,
      })),
    )
    .execute();
  const materializationId = (c: Call) =>
    `m-${c.run}-${c.asset}${c.partition === null ? "" : `-${c.partition}`}`;
  const materializations = new Map<string, Call>();
  for (const c of CALLS) materializations.set(materializationId(c), c);
  await db
    .insertInto("strata.materializations")
    .values(
      [...materializations].map(([id, c]) => ({
        id,
        run_id: SEED_RUNS[c.run],
        asset_key: c.asset,
        partition_key: c.partition,
        status: "succeeded" as const,
        code_version: null,
        data_version: null,
        started_at: runAt[c.run],
        finished_at: runAt[c.run],
        row_count: null,
        storage_path: null,
        error: null,
      })),
    )
    .execute();
  const ids = new Map<string, number>();
  for (const c of CALLS) {
    const price = PRICES[c.model];
    const [prompt, cached, completion] = c.tokens ?? [0, 0, 0];
    const cachedFrom = c.cachedFrom === undefined ? null : ids.get(c.cachedFrom);
    if (cachedFrom === undefined) throw new Error(`seed: unknown call ${c.cachedFrom}`);
    const row = await db
      .insertInto("strata.inference_calls")
      .values({
        run_id: SEED_RUNS[c.run],
        materialization_id: materializationId(c),
        asset_key: c.asset,
        partition_key: c.partition,
        document_id: c.document,
        model: c.model,
        provider_model: price.provider,
        endpoint: "local",
        request_hash: `${c.asset}/${c.partition}/${c.document}/${c.model}`,
        status: c.status ?? "succeeded",
        attempts: c.attempts ?? 1,
        prompt_tokens: prompt,
        cached_tokens: cached,
        completion_tokens: completion,
        reasoning_tokens: 0,
        input_price_per_mtok: price.input,
        cached_input_price_per_mtok: price.cached,
        output_price_per_mtok: price.output,
        latency_ms: c.cachedFrom === undefined ? 120 : 0,
        cache_hit: c.cachedFrom !== undefined,
        cached_from: cachedFrom,
        error: c.error ?? null,
        output: c.status === undefined ? `answer to ${c.document}` : null,
        created_at: seeded[c.at],
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    if (c.name !== undefined) ids.set(c.name, Number(row.id));
  }
  return seeded;
}

/** A decimal string without trailing zeros (`"0.00012200"` → `"0.000122"`, `"3.000"` → `"3"`). */
export function trimDecimal(value: string): string {
  return value.includes(".") ? value.replace(/0+$/, "").replace(/\.$/, "") : value;
}
