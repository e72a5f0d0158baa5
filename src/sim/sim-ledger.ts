/**
 * The tokens the simulator billed for one model (or for all models, in `totals`).
 *
 * `promptTokens` includes `cachedTokens`, as OpenAI's usage reports it.
 *
 * @example
 * const bill: SimModelBill = { calls: 1, promptTokens: 20, cachedTokens: 0, completionTokens: 16 };
 */
export interface SimModelBill {
  readonly calls: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
}

/**
 * What happened to the chat completion requests the simulator received.
 *
 * @example
 * const { total, billed, rateLimited } = sim.ledger().requests;
 */
export interface SimRequestCounts {
  /** Every `POST /v1/chat/completions`, whatever became of it. */
  readonly total: number;
  /** Completions delivered in full with their usage: the calls in the bill. */
  readonly billed: number;
  /** Injected 500s (`errorRate`). */
  readonly errors: number;
  /** 429s from the requests-per-minute limit (`rateLimitRpm`). */
  readonly rateLimited: number;
  /** 429s with code `insufficient_quota` (`quotaExhausted`). */
  readonly quotaExhausted: number;
  /** Requests left unanswered on purpose (`timeoutRate`). */
  readonly timedOut: number;
  /** 200s whose body is not JSON (`malformedRate`); never billed. */
  readonly malformed: number;
  /** 400s: bad JSON, a missing field, a prompt over the context window. */
  readonly badRequests: number;
  /** 401s: missing or wrong API key. */
  readonly unauthorized: number;
  /** 404s: a model outside the configured `models`. */
  readonly notFound: number;
  /** Completions the client went away from before they were delivered; never billed. */
  readonly aborted: number;
}

/**
 * The names of the request counters.
 *
 * @example
 * const outcome: SimRequestOutcome = "rateLimited";
 */
export type SimRequestOutcome = keyof SimRequestCounts;

/**
 * The simulator's own bill, as `GET /ledger` returns it and `sim.ledger()` gives it.
 *
 * @example
 * const { models, totals, requests } = sim.ledger();
 * models["qwen3-8b"]?.promptTokens;
 */
export interface SimLedgerSnapshot {
  readonly models: Readonly<Record<string, SimModelBill>>;
  readonly totals: SimModelBill;
  readonly requests: SimRequestCounts;
}

interface MutableBill {
  calls: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

type MutableCounts = { -readonly [K in keyof SimRequestCounts]: number };

/**
 * The simulator's bill: billed tokens per model and what became of every request.
 *
 * A call is billed when a completion with its usage was delivered to the client in full (for a
 * stream: when the last chunk was written, whether or not the client asked for the usage chunk).
 * Malformed responses, errors, timeouts and completions the client abandoned are not billed, so
 * a client that records the usage of every response it could read reconciles exactly.
 *
 * @example
 * const ledger = new SimLedger();
 * ledger.bill("m", { promptTokens: 10, cachedTokens: 0, completionTokens: 5 });
 * ledger.snapshot().totals.calls; // 1
 */
export class SimLedger {
  #models = new Map<string, MutableBill>();
  #requests: MutableCounts = emptyCounts();

  /** Adds one billed call for `model`. */
  bill(model: string, usage: Omit<SimModelBill, "calls">): void {
    let bill = this.#models.get(model);
    if (bill === undefined) {
      bill = { calls: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
      this.#models.set(model, bill);
    }
    bill.calls++;
    bill.promptTokens += usage.promptTokens;
    bill.cachedTokens += usage.cachedTokens;
    bill.completionTokens += usage.completionTokens;
    this.#requests.billed++;
  }

  /** Counts one request outcome. */
  count(outcome: Exclude<SimRequestOutcome, "billed">): void {
    this.#requests[outcome]++;
  }

  /** A copy of the bill, safe to keep and compare. */
  snapshot(): SimLedgerSnapshot {
    const models: Record<string, SimModelBill> = {};
    const totals: MutableBill = { calls: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
    for (const [model, bill] of this.#models) {
      models[model] = { ...bill };
      totals.calls += bill.calls;
      totals.promptTokens += bill.promptTokens;
      totals.cachedTokens += bill.cachedTokens;
      totals.completionTokens += bill.completionTokens;
    }
    return { models, totals, requests: { ...this.#requests } };
  }

  /** Zeroes the bill and the counters. */
  reset(): void {
    this.#models = new Map();
    this.#requests = emptyCounts();
  }
}

function emptyCounts(): MutableCounts {
  return {
    total: 0,
    billed: 0,
    errors: 0,
    rateLimited: 0,
    quotaExhausted: 0,
    timedOut: 0,
    malformed: 0,
    badRequests: 0,
    unauthorized: 0,
    notFound: 0,
    aborted: 0,
  };
}
