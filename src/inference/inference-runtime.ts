import type { Kysely } from "kysely";
import OpenAI from "openai";
import { endpointUrlProblem, redactUrl } from "../assets/endpoint-url.js";
import type {
  EndpointConfig,
  ModelConfig,
  ProjectDefinition,
} from "../assets/project-definition.js";
import { StrataError } from "../errors.js";
import { CostLedger, type CostLedgerOptions } from "../store/cost-ledger.js";
import type { Database } from "../store/database.js";
import { pricePerMTokText, pricePerToken, type TokenPrices } from "../util/decimal.js";
import { closestMatch } from "../util/edit-distance.js";
import { DEFAULT_API_KEY_ENV, registerApiKeys } from "./api-keys.js";
import { Budget } from "./budget.js";
import { EndpointLimiter, RateBucket } from "./endpoint-limiter.js";
import { httpTransport } from "./http-transport.js";
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry-policy.js";
import { type SharedOutcome, SharedRequests } from "./shared-requests.js";

/** Calls in flight per endpoint when it names none. */
export const DEFAULT_MAX_CONCURRENCY = 64;
/** Per-call timeout when the endpoint names none. */
export const DEFAULT_TIMEOUT_MS = 120_000;
/** How long an endpoint that cannot be reached is retried before attempts count. */
export const DEFAULT_OUTAGE_TOLERANCE_MS = DEFAULT_RETRY_POLICY.outageToleranceMs;
/** Attempts per document and model before falling back. */
export const DEFAULT_MAX_ATTEMPTS = DEFAULT_RETRY_POLICY.maxAttempts;

/** A model of the project, resolved to its endpoint, client, prices and limits. */
export interface ResolvedModel {
  readonly key: string;
  readonly name: string;
  readonly endpointKey: string;
  /** The endpoint's base URL as it may be shown: no credentials, no query string. */
  readonly endpointURL: string;
  readonly client: OpenAI;
  readonly timeoutMs: number;
  readonly limiter: EndpointLimiter;
  readonly bucket: RateBucket;
  /** Attempts, backoff and outage tolerance of its calls. */
  readonly retry: RetryPolicy;
  /** Femto-dollars per token: what every cost of the model is computed from. */
  readonly prices: TokenPrices;
  /** The same prices as decimal strings per million tokens, as snapshotted on ledger rows. */
  readonly priceSnapshot: {
    readonly input: string;
    readonly cachedInput: string;
    readonly output: string;
  };
}

/** Progress of one inference step, for progress bars. */
export interface InferenceProgress {
  readonly stepId: string;
  readonly total: number;
  readonly done: number;
  readonly failed: number;
  readonly cacheHits: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Spent by this step so far, exact decimal. */
  readonly costUsd: string;
}

/** What a run's inference shares across its steps. */
export interface InferenceRuntimeOptions {
  readonly project: ProjectDefinition;
  readonly db: Kysely<Database>;
  readonly env: NodeJS.ProcessEnv;
  /** `--max-cost` in USD, or null for no cap. */
  readonly maxCostUsd: string | null;
  /** What the runs this one resumes spent (exact decimal): it counts against `maxCostUsd`. */
  readonly spentBeforeUsd?: string;
  /**
   * `--no-cache`: call the endpoint even for requests the ledger has answered, except those
   * answered by `reuseRuns` (the run itself and the runs it resumes).
   */
  readonly noCache?: boolean;
  readonly reuseRuns?: ReadonlyArray<string>;
  readonly ledger?: CostLedgerOptions;
  readonly onProgress?: (progress: InferenceProgress) => void;
}

/**
 * Everything a run's inference shares: one OpenAI client per endpoint (its own retries off, so
 * every attempt is ours to count), one adaptive concurrency limiter per endpoint, rate buckets
 * per model, the run's budget, the batched cost ledger and the run's calls by request hash (so
 * documents of any of its steps that make the same request share one call).
 *
 * @example
 * const runtime = new InferenceRuntime({ project, db, env: process.env, maxCostUsd: null });
 * ... await runtime.close();
 */
export class InferenceRuntime {
  readonly ledger: CostLedger;
  readonly budget: Budget;
  readonly noCache: boolean;
  /** The runs whose answers the cache may give: null for every run's. */
  readonly cacheRuns: ReadonlyArray<string> | null;
  readonly onProgress: ((progress: InferenceProgress) => void) | undefined;
  readonly db: Kysely<Database>;
  /** The run's calls by request hash: an identical request is sent once per run. */
  readonly sharedRequests = new SharedRequests<SharedOutcome>();
  readonly #project: ProjectDefinition;
  readonly #env: NodeJS.ProcessEnv;
  readonly #clients = new Map<string, OpenAI>();
  readonly #limiters = new Map<string, EndpointLimiter>();
  readonly #models = new Map<string, ResolvedModel>();
  readonly #quotaExhausted = new Map<string, string>();
  readonly #unreachableSince = new Map<string, number>();
  readonly #answered = new Set<string>();
  /** Per endpoint, per step: connection failures before it ever answered, and the verdict. */
  readonly #refusals = new Map<string, Map<string, { count: number; reason?: string }>>();

  constructor(options: InferenceRuntimeOptions) {
    this.#project = options.project;
    this.#env = options.env;
    this.db = options.db;
    this.ledger = new CostLedger(options.db, options.ledger);
    this.budget = new Budget(options.maxCostUsd, options.spentBeforeUsd);
    this.noCache = options.noCache === true;
    this.cacheRuns = this.noCache ? (options.reuseRuns ?? []) : null;
    this.onProgress = options.onProgress;
    registerApiKeys(options.project, options.env);
  }

  /** The model `key` of the project, or `unknown_model` naming the known ones. */
  model(key: string, assetKey: string): ResolvedModel {
    const known = this.#models.get(key);
    if (known !== undefined) return known;
    const config = this.#project.models[key];
    if (config === undefined) {
      const keys = Object.keys(this.#project.models);
      const hint = closestMatch(key, keys);
      throw new StrataError(
        "unknown_model",
        `asset "${assetKey}" calls unknown model "${key}"; ${
          hint !== undefined
            ? `did you mean "${hint}"?`
            : keys.length > 0
              ? `the project's models are ${keys.map((k) => `"${k}"`).join(", ")}`
              : "add it to defineProject({ models: { ... } })"
        }`,
      );
    }
    const resolved = this.#resolve(key, config);
    this.#models.set(key, resolved);
    return resolved;
  }

  /** Marks an endpoint's account as out of quota: no more calls go to it in this run. */
  markQuotaExhausted(endpointKey: string, reason: string): void {
    if (!this.#quotaExhausted.has(endpointKey)) this.#quotaExhausted.set(endpointKey, reason);
  }

  /** Why an endpoint is out of quota, or undefined. */
  quotaExhausted(endpointKey: string): string | undefined {
    return this.#quotaExhausted.get(endpointKey);
  }

  /**
   * When an endpoint was first found unreachable in its current outage (now, if this is the
   * first failure): one clock per endpoint, so a server that is down for good fails the
   * remaining documents at once after the tolerance instead of each waiting it out.
   */
  unreachableSince(endpointKey: string): number {
    let since = this.#unreachableSince.get(endpointKey);
    if (since === undefined) {
      since = Date.now();
      this.#unreachableSince.set(endpointKey, since);
    }
    return since;
  }

  /** The endpoint answered (with anything): its outage, if any, is over. */
  markReachable(endpointKey: string): void {
    this.#unreachableSince.delete(endpointKey);
    this.#answered.add(endpointKey);
    this.#refusals.delete(endpointKey);
  }

  /** Whether the endpoint has answered a call in this run (so a failure to reach it is an outage). */
  hasAnswered(endpointKey: string): boolean {
    return this.#answered.has(endpointKey);
  }

  /** Counts a failure to reach an endpoint that has not answered yet; returns the step's count. */
  noteRefusal(endpointKey: string, stepId: string): number {
    let steps = this.#refusals.get(endpointKey);
    if (steps === undefined) {
      steps = new Map();
      this.#refusals.set(endpointKey, steps);
    }
    const state = steps.get(stepId) ?? { count: 0 };
    state.count += 1;
    steps.set(stepId, state);
    return state.count;
  }

  /** Gives up on an endpoint for the rest of a step: its calls fail with `reason` unsent. */
  markRefused(endpointKey: string, stepId: string, reason: string): void {
    const state = this.#refusals.get(endpointKey)?.get(stepId);
    if (state !== undefined && state.reason === undefined) state.reason = reason;
  }

  /** Why the step gave up on an endpoint that could not be reached, or undefined. */
  refused(endpointKey: string, stepId: string): string | undefined {
    return this.#refusals.get(endpointKey)?.get(stepId)?.reason;
  }

  /** Writes every buffered ledger row. */
  async close(): Promise<void> {
    await this.ledger.flush();
  }

  #resolve(key: string, config: ModelConfig): ResolvedModel {
    const endpoint = this.#project.endpoints[config.endpoint];
    if (endpoint === undefined) {
      throw new StrataError(
        "unknown_endpoint",
        `model "${key}" uses unknown endpoint "${config.endpoint}"; add it to defineProject({ endpoints: { ... } })`,
      );
    }
    const price = config.price;
    // Exact to a billionth of a dollar per million tokens; the row snapshots the price it was
    // priced at, so Postgres computes the same cost from it.
    const prices: TokenPrices = {
      input: price === undefined ? 0n : pricePerToken(price.inputPerMTok),
      cachedInput:
        price === undefined ? 0n : pricePerToken(price.cachedInputPerMTok ?? price.inputPerMTok),
      output: price === undefined ? 0n : pricePerToken(price.outputPerMTok),
    };
    const client = this.#client(config.endpoint, endpoint);
    return {
      key,
      name: config.name,
      endpointKey: config.endpoint,
      endpointURL: redactUrl(client.baseURL),
      client,
      timeoutMs: endpoint.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      limiter: this.#limiter(config.endpoint, endpoint),
      bucket: new RateBucket({ rpm: config.rpm, tpm: config.tpm }),
      retry: Object.freeze({
        ...DEFAULT_RETRY_POLICY,
        maxAttempts: config.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        outageToleranceMs: endpoint.outageToleranceMs ?? DEFAULT_OUTAGE_TOLERANCE_MS,
      }),
      prices,
      priceSnapshot: {
        input: pricePerMTokText(prices.input),
        cachedInput: pricePerMTokText(prices.cachedInput),
        output: pricePerMTokText(prices.output),
      },
    };
  }

  #client(key: string, endpoint: EndpointConfig): OpenAI {
    let client = this.#clients.get(key);
    if (client === undefined) {
      const apiKeyEnv = endpoint.apiKeyEnv ?? DEFAULT_API_KEY_ENV;
      // OPENAI_BASE_URL is trimmed and blank means unset, as the OpenAI SDK reads it.
      const baseURL = endpoint.baseURL ?? this.#env.OPENAI_BASE_URL?.trim();
      const problem =
        baseURL === undefined || (endpoint.baseURL === undefined && baseURL === "")
          ? null
          : endpointUrlProblem(baseURL);
      if (problem !== null) {
        // The CLI's project loader refuses these already; a project run from code may not.
        throw new StrataError(
          "invalid_definition",
          `endpoint "${key}" has an invalid ${endpoint.baseURL === undefined ? "OPENAI_BASE_URL" : "baseURL"} ${JSON.stringify(redactUrl(baseURL!))}: ${problem}`,
        );
      }
      client = new OpenAI({
        // A local vLLM or SGLang server takes any key; a hosted API answers 401 without one.
        apiKey: this.#env[apiKeyEnv] ?? "no-api-key-set",
        ...(baseURL !== undefined && baseURL !== "" ? { baseURL } : {}),
        maxRetries: 0,
        timeout: endpoint.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        fetch: httpTransport(),
      });
      this.#clients.set(key, client);
    }
    return client;
  }

  #limiter(key: string, endpoint: EndpointConfig): EndpointLimiter {
    let limiter = this.#limiters.get(key);
    if (limiter === undefined) {
      limiter = new EndpointLimiter(endpoint.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY);
      this.#limiters.set(key, limiter);
    }
    return limiter;
  }
}
