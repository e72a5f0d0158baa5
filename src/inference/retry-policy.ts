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

/** `retry-after-ms`, else `retry-after` (seconds or an HTTP date), in milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | null {
  if (headers === undefined) return null;
  const ms = Number(headers.get("retry-after-ms"));
  if (headers.get("retry-after-ms") !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const after = headers.get("retry-after");
  if (after === null) return null;
  const seconds = Number(after);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(after);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
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
