import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { fullJitterBackoffMs } from "../util/backoff.js";
import { errorMessage } from "../util/error-message.js";
import { redactSecrets } from "../util/redactor.js";

/**
 * How the calls of a model are retried, as data: attempts, the backoff between them, how long an
 * endpoint that went away is waited for, and how soon one that never answered is given up on.
 * {@link nextAttempt} reads it; the loop that sleeps and calls does what it says.
 */
export interface RetryPolicy {
  /** Attempts of one document on one model before it falls back to the next model. */
  readonly maxAttempts: number;
  /** The ceiling of the first backoff; it doubles with each failed attempt... */
  readonly backoffBaseMs: number;
  /** ...up to this. */
  readonly backoffCapMs: number;
  /** How long an endpoint that answered and went away is retried without counting attempts. */
  readonly outageToleranceMs: number;
  /** Connection failures in a step after which an endpoint that never answered is given up on. */
  readonly refusalsBeforeGivingUp: number;
}

/** How an attempt failed, as {@link classifyFailure} sorts it and {@link nextAttempt} reads it. */
export type AttemptFailure =
  /** Try again after a backoff (or the server's `retry-after`). */
  | {
      readonly kind: "retry";
      readonly reason: string;
      readonly retryAfterMs: number | null;
      readonly throttled: boolean;
      /** The endpoint could not be reached at all (down, restarting): retried for a while. */
      readonly unreachable?: boolean;
      /** The endpoint answered something unreadable (not JSON, not a completion). */
      readonly malformed?: boolean;
    }
  /** The account is out of quota: no call on this endpoint can succeed. */
  | { readonly kind: "quota"; readonly reason: string }
  /** This request will not succeed on this model (a 400, 401, 404...). */
  | { readonly kind: "final"; readonly reason: string }
  /** The run was canceled. */
  | { readonly kind: "aborted"; readonly reason: string };

const RETRYABLE_STATUS = new Set([408, 409, 429]);

/**
 * Classifies a failed chat completion call as DESIGN.md's failure semantics say: 408, 409, 429
 * and 5xx, connection errors, timeouts and unreadable bodies are retried; a 429 whose code is
 * `insufficient_quota` and every other 4xx are final. The reason quotes what the endpoint said,
 * without the process's secrets (an endpoint may echo the API key it was sent).
 *
 * @example
 * const next = nextAttempt(policy, { attempt, outageRetries: 0 }, classifyFailure(error));
 */
export function classifyFailure(error: unknown): AttemptFailure {
  const failure = classify(error);
  return { ...failure, reason: redactSecrets(failure.reason) };
}

function classify(error: unknown): AttemptFailure {
  if (error instanceof APIUserAbortError) return { kind: "aborted", reason: "canceled" };
  if (error instanceof APIConnectionError) {
    // APIConnectionTimeoutError is a subclass: a timeout is retried like a dropped connection.
    const detail = errorCode(error);
    return {
      kind: "retry",
      reason: `${error.message || "connection error"}${detail}`,
      retryAfterMs: null,
      throttled: false,
      unreachable: !(error instanceof APIConnectionTimeoutError),
    };
  }
  if (error instanceof APIError && error.status !== undefined) {
    const status = error.status;
    const reason = `${status} ${describeApiError(error)}`;
    if (
      status === 429 &&
      (error.code === "insufficient_quota" || errorType(error) === "insufficient_quota")
    ) {
      return { kind: "quota", reason };
    }
    if (RETRYABLE_STATUS.has(status) || status >= 500) {
      return {
        kind: "retry",
        reason,
        retryAfterMs: retryAfterMs(error.headers),
        throttled: status === 429,
      };
    }
    return { kind: "final", reason };
  }
  // A body that is not JSON, a response without usage, absurd token counts: the endpoint
  // misbehaved on this attempt; another attempt may well succeed.
  const message = errorMessage(error);
  return { kind: "retry", reason: message, retryAfterMs: null, throttled: false, malformed: true };
}

function errorType(error: APIError): string | undefined {
  const body = error.error as { type?: unknown } | undefined;
  return typeof body?.type === "string" ? body.type : undefined;
}

function describeApiError(error: APIError): string {
  const body = error.error as { message?: unknown } | undefined;
  const text = typeof body?.message === "string" ? body.message : error.message;
  return text.replace(/^\d{3}\s+/, "");
}

/**
 * The longest delay a server may ask for that is waited out (60 s, as the OpenAI SDKs do): a
 * `retry-after` of hours (a daily quota's reset, a misconfigured proxy) would stall the run.
 */
export const MAX_SERVER_DELAY_MS = 60_000;

/**
 * A delay a server asked for, if it is one to honour: from 0 to {@link MAX_SERVER_DELAY_MS}.
 * A longer one (or none, or a negative one) gives null: the caller backs off as if the server
 * had said nothing, as the OpenAI SDKs do.
 *
 * @example
 * honouredDelayMs(2_000); // 2000
 * honouredDelayMs(86_400_000); // null: back off instead of waiting a day
 */
export function honouredDelayMs(ms: number | null): number | null {
  if (ms === null || !Number.isFinite(ms) || ms < 0 || ms > MAX_SERVER_DELAY_MS) return null;
  return ms;
}

/**
 * `retry-after-ms`, else `retry-after` (seconds or an HTTP date), in milliseconds, when it is
 * one to honour (see {@link honouredDelayMs}); null otherwise.
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | null {
  if (headers === undefined) return null;
  const ms = Number(headers.get("retry-after-ms"));
  if (headers.get("retry-after-ms") !== null && Number.isFinite(ms) && ms >= 0) {
    return honouredDelayMs(ms);
  }
  const after = headers.get("retry-after");
  if (after === null) return null;
  const seconds = Number(after);
  if (after.trim() !== "" && Number.isFinite(seconds)) return honouredDelayMs(seconds * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? null : honouredDelayMs(Math.max(0, date - now));
}

/** Parses OpenAI's reset durations (`1s`, `6m0s`, `250ms`, `1h2m3.5s`) into milliseconds. */
export function parseResetDuration(value: string | null): number | null {
  if (value === null || value === "") return null;
  const asNumber = Number(value);
  if (Number.isFinite(asNumber)) return asNumber * 1000;
  let total = 0;
  let matched = false;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    matched = true;
    const n = Number(m[1]);
    total +=
      m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000;
  }
  return matched ? total : null;
}

/**
 * Connection failures of an endpoint that has not answered once in the run after which a step
 * stops trying it: a server that is not running is reported in about a second, not after the
 * outage tolerance, which is for endpoints that were up and went away.
 */
export const REFUSALS_BEFORE_GIVING_UP = 3;

/**
 * The policy of a model whose project sets nothing: 5 attempts, backoff from 250 ms up to 20 s,
 * two minutes of outage tolerance.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  backoffBaseMs: 250,
  backoffCapMs: 20_000,
  outageToleranceMs: 120_000,
  refusalsBeforeGivingUp: REFUSALS_BEFORE_GIVING_UP,
});

/** Where a call stands when an attempt failed, for {@link nextAttempt}. */
export interface AttemptState {
  /** The attempt that failed, from 1; outage retries do not count. */
  readonly attempt: number;
  /** Outage retries of this call before this failure. */
  readonly outageRetries: number;
  /**
   * The endpoint's side, read only when the attempt could not reach it (reading it counts a
   * refusal and starts the outage clock): without it such a failure is retried as any other.
   */
  readonly outage?: {
    /** The endpoint has answered a call in this run (it was up and went away). */
    readonly answered: boolean;
    /** Connection failures in this step while it has not answered, this one included. */
    readonly refusals: number;
    /** How long the endpoint has been unreachable (its outage clock). */
    readonly downMs: number;
  };
}

/** Why a call is not tried again on its model. */
export type GiveUpReason =
  /** The run was canceled. */
  | "canceled"
  /** The account is out of quota. */
  | "quota"
  /** The request will not succeed on this model (a 400, a refusal...). */
  | "final"
  /** The endpoint never answered in this run: its server is not running or its URL is wrong. */
  | "refused"
  /** The endpoint went away for longer than the outage tolerance. */
  | "down"
  /** Every attempt failed. */
  | "attempts";

/** What to do after a failed attempt: wait and try again, or give up on this model. */
export type NextAttempt =
  | { readonly kind: "retry"; readonly delayMs: number; readonly countsAsAttempt: boolean }
  | { readonly kind: "give-up"; readonly reason: GiveUpReason };

/**
 * The retry decision after a failed attempt, a pure function of the policy, the call's state
 * and the failure: canceled, quota and final failures give up at once; an unreachable endpoint
 * follows the outage clock ({@link unreachableVerdict}); any other failure is retried after the
 * server's `retry-after` (when it is one to honour, see {@link honouredDelayMs}) or a full-jitter
 * backoff, until the policy's attempts are spent.
 *
 * @example
 * nextAttempt(DEFAULT_RETRY_POLICY, { attempt: 1, outageRetries: 0 }, { kind: "retry", reason: "503", retryAfterMs: 2_000, throttled: false });
 * // { kind: "retry", delayMs: 2000, countsAsAttempt: true }
 */
export function nextAttempt(
  policy: RetryPolicy,
  state: AttemptState,
  failure: AttemptFailure,
  random: () => number = Math.random,
): NextAttempt {
  if (failure.kind === "aborted") return giveUp("canceled");
  if (failure.kind === "quota" || failure.kind === "final") return giveUp(failure.kind);
  const lastAttempt = state.attempt >= policy.maxAttempts;
  if (failure.unreachable === true && state.outage !== undefined) {
    const verdict = unreachableVerdict(
      {
        ...state.outage,
        lastAttempt,
        outageToleranceMs: policy.outageToleranceMs,
        outageRetries: state.outageRetries + 1,
        refusalsBeforeGivingUp: policy.refusalsBeforeGivingUp,
      },
      random,
    );
    return verdict.kind === "retry" ? verdict : giveUp(verdict.kind);
  }
  if (lastAttempt) return giveUp("attempts");
  const delayMs =
    honouredDelayMs(failure.retryAfterMs) ??
    fullJitterBackoffMs(state.attempt, policy.backoffBaseMs, policy.backoffCapMs, random);
  return { kind: "retry", delayMs, countsAsAttempt: true };
}

function giveUp(reason: GiveUpReason): NextAttempt {
  return { kind: "give-up", reason };
}

/** Where an endpoint that could not be reached stands, for {@link unreachableVerdict}. */
export interface UnreachableState {
  /** The endpoint has answered a call in this run (it was up and went away). */
  readonly answered: boolean;
  /** Connection failures in this step while it has not answered, this one included. */
  readonly refusals: number;
  /** This was the call's last attempt. */
  readonly lastAttempt: boolean;
  /** How long the endpoint has been unreachable (its outage clock). */
  readonly downMs: number;
  readonly outageToleranceMs: number;
  /** Outage retries of this call so far, this one included. */
  readonly outageRetries: number;
  /** Refusals after which it is given up on (default {@link REFUSALS_BEFORE_GIVING_UP}). */
  readonly refusalsBeforeGivingUp?: number;
}

/**
 * What to do about a call that could not reach its endpoint: an endpoint that never answered
 * in this run is given up on after {@link REFUSALS_BEFORE_GIVING_UP} failures in the step (or at
 * the call's last attempt), `refused`; one that was up is retried, without counting attempts,
 * until its outage tolerance has passed, then `down`.
 *
 * @example
 * unreachableVerdict({ answered: false, refusals: 3, lastAttempt: false, downMs: 10, outageToleranceMs: 120_000, outageRetries: 1 });
 * // { kind: "refused" }
 */
export function unreachableVerdict(
  state: UnreachableState,
  random = Math.random,
):
  | { readonly kind: "retry"; readonly delayMs: number; readonly countsAsAttempt: boolean }
  | { readonly kind: "refused" }
  | { readonly kind: "down" } {
  if (!state.answered) {
    const limit = state.refusalsBeforeGivingUp ?? REFUSALS_BEFORE_GIVING_UP;
    if (state.lastAttempt || state.refusals >= limit) return { kind: "refused" };
    return {
      kind: "retry",
      delayMs: fullJitterBackoffMs(state.refusals, 100, 1_000, random),
      countsAsAttempt: true,
    };
  }
  if (state.downMs >= state.outageToleranceMs) return { kind: "down" };
  return {
    kind: "retry",
    delayMs: fullJitterBackoffMs(Math.min(state.outageRetries, 5), 250, 5_000, random),
    countsAsAttempt: false,
  };
}

/** ` (ECONNREFUSED)` from a connection error's cause chain (fetch nests it), or "". */
function errorCode(error: unknown): string {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== null && typeof current === "object"; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return ` (${code})`;
    current = (current as { cause?: unknown }).cause;
  }
  return "";
}
