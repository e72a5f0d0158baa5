import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from "openai";
import { redactSecrets } from "../util/redactor.js";

/** What to do after an attempt failed. */
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
 * const failure = classifyFailure(error); if (failure.kind === "retry") await sleep(backoffMs(attempt));
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
  const message = error instanceof Error ? error.message : String(error);
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

/** Exponential backoff with full jitter: uniform in [0, min(cap, base × 2^attempt)). */
export function backoffMs(
  attempt: number,
  baseMs = 250,
  capMs = 20_000,
  random = Math.random,
): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
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
    if (state.lastAttempt || state.refusals >= REFUSALS_BEFORE_GIVING_UP)
      return { kind: "refused" };
    return {
      kind: "retry",
      delayMs: backoffMs(state.refusals, 100, 1_000, random),
      countsAsAttempt: true,
    };
  }
  if (state.downMs >= state.outageToleranceMs) return { kind: "down" };
  return {
    kind: "retry",
    delayMs: backoffMs(Math.min(state.outageRetries, 5), 250, 5_000, random),
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
