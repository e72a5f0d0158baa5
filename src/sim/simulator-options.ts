import type { PrefixCacheOptions } from "./prefix-cache.js";
import { DEFAULT_PREFIX_CACHE_OPTIONS } from "./prefix-cache.js";

/**
 * How the simulated endpoint behaves: where it listens, how fast it answers, which faults it
 * injects and what it accepts. Every field is optional; rates are probabilities in `[0, 1]`.
 *
 * One seeded roll per admitted request picks at most one fault: error with probability
 * `errorRate`, else timeout with `timeoutRate`, else malformed with `malformedRate` (their sum
 * past 1 squeezes the later ones). Quota and rate limits are checked before that roll.
 *
 * @example
 * const options: SimulatorOptions = { port: 0, latencyMs: 200, errorRate: 0.01, rateLimitRpm: 600 };
 */
export interface SimulatorOptions {
  /** Interface to listen on (default `127.0.0.1`). */
  readonly host?: string;
  /** Port to listen on; 0 picks a free one (default 0). */
  readonly port?: number;
  /** Seeds the completion text and every random fault decision (default 0). */
  readonly seed?: number;
  /** Fixed latency of every completion, in milliseconds (time to first token when streaming). */
  readonly latencyMs?: number;
  /** Added latency per output token, in milliseconds. */
  readonly perTokenLatencyMs?: number;
  /** Uniform random extra latency in `[0, jitterMs)`, drawn from the seeded generator. */
  readonly jitterMs?: number;
  /** Share of requests answered with a 500 `server_error`. */
  readonly errorRate?: number;
  /** Requests per minute before 429 `rate_limit_exceeded`; 0 or absent: no limit. */
  readonly rateLimitRpm?: number;
  /** When true every completion request gets 429 `insufficient_quota`. */
  readonly quotaExhausted?: boolean;
  /** Share of requests never answered: the socket stays open until the client gives up. */
  readonly timeoutRate?: number;
  /** Share of requests answered 200 with a body that is not JSON (never billed). */
  readonly malformedRate?: number;
  /** The models served and listed; a request for another gets 404. Absent: any name works. */
  readonly models?: ReadonlyArray<string>;
  /** Longest prompt in tokens; a longer one gets 400 `context_length_exceeded` (default 32,768). */
  readonly contextWindow?: number;
  /** When set, requests must send `Authorization: Bearer <apiKey>` or get 401. */
  readonly apiKey?: string;
  /** Shortest natural completion, in tokens (default 16). */
  readonly minOutputTokens?: number;
  /** Longest natural completion, in tokens, before `max_tokens` cuts it (default 256). */
  readonly maxOutputTokens?: number;
  /** The simulated prefix cache (default: OpenAI's 1,024-token minimum in 128-token steps). */
  readonly prefixCache?: Partial<PrefixCacheOptions>;
  /** Largest accepted request body in bytes (default 32 MiB); larger gets 413. */
  readonly maxBodyBytes?: number;
}

/**
 * Options that can change while the simulator runs (everything but where it listens).
 *
 * @example
 * sim.setOptions({ errorRate: 1 } satisfies SimulatorRuntimeOptions);
 */
export type SimulatorRuntimeOptions = Omit<SimulatorOptions, "host" | "port" | "prefixCache">;

/**
 * Options with every default filled in.
 *
 * @example
 * const resolved: ResolvedSimulatorOptions = resolveSimulatorOptions({ latencyMs: 50 });
 */
export type ResolvedSimulatorOptions = Readonly<
  Required<Omit<SimulatorOptions, "models" | "apiKey" | "prefixCache">> & {
    models: ReadonlyArray<string> | undefined;
    apiKey: string | undefined;
    prefixCache: PrefixCacheOptions;
  }
>;

/**
 * The defaults: answers at once, injects no faults, accepts any model and any key.
 *
 * @example
 * DEFAULT_SIMULATOR_OPTIONS.contextWindow; // 32768
 */
export const DEFAULT_SIMULATOR_OPTIONS: ResolvedSimulatorOptions = Object.freeze({
  host: "127.0.0.1",
  port: 0,
  seed: 0,
  latencyMs: 0,
  perTokenLatencyMs: 0,
  jitterMs: 0,
  errorRate: 0,
  rateLimitRpm: 0,
  quotaExhausted: false,
  timeoutRate: 0,
  malformedRate: 0,
  models: undefined,
  contextWindow: 32_768,
  apiKey: undefined,
  minOutputTokens: 16,
  maxOutputTokens: 256,
  prefixCache: DEFAULT_PREFIX_CACHE_OPTIONS,
  maxBodyBytes: 32 * 1024 * 1024,
});

/**
 * Fills in defaults over `base` and checks every value, throwing a `RangeError` that names the
 * option and the accepted range.
 *
 * @example
 * resolveSimulatorOptions({ errorRate: 0.1 }).errorRate; // 0.1
 */
export function resolveSimulatorOptions(
  options: SimulatorOptions,
  base: ResolvedSimulatorOptions = DEFAULT_SIMULATOR_OPTIONS,
): ResolvedSimulatorOptions {
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as SimulatorOptions;
  const resolved = {
    ...base,
    ...defined,
    prefixCache: { ...base.prefixCache, ...options.prefixCache },
    models: options.models === undefined ? base.models : Object.freeze([...options.models]),
  } as ResolvedSimulatorOptions;

  for (const name of ["errorRate", "timeoutRate", "malformedRate"] as const) {
    const value = resolved[name];
    if (!(value >= 0 && value <= 1))
      throw new RangeError(`option "${name}" must be between 0 and 1`);
  }
  for (const name of ["latencyMs", "perTokenLatencyMs", "jitterMs", "rateLimitRpm"] as const) {
    const value = resolved[name];
    if (!(value >= 0 && Number.isFinite(value))) {
      throw new RangeError(`option "${name}" must be a finite number >= 0`);
    }
  }
  const integers = ["port", "contextWindow", "minOutputTokens", "maxOutputTokens", "maxBodyBytes"];
  for (const name of integers as ReadonlyArray<keyof ResolvedSimulatorOptions>) {
    const value = resolved[name];
    if (!(typeof value === "number" && Number.isInteger(value) && value >= 0)) {
      throw new RangeError(`option "${name}" must be a whole number >= 0`);
    }
  }
  if (resolved.maxOutputTokens < resolved.minOutputTokens) {
    throw new RangeError(`option "maxOutputTokens" must be >= "minOutputTokens"`);
  }
  if (!Number.isFinite(resolved.seed)) throw new RangeError(`option "seed" must be a number`);
  if (resolved.models?.length === 0) {
    throw new RangeError(`option "models" must name at least one model, or be left out`);
  }
  return Object.freeze(resolved);
}
