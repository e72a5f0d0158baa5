/**
 * The outcome of asking the limiter for one request, with what the rate-limit headers report.
 *
 * @example
 * const { allowed, remaining, retryAfterMs } = limiter.take(Date.now());
 */
export interface RateLimitDecision {
  readonly allowed: boolean;
  /** Requests per minute. */
  readonly limit: number;
  /** Requests that could be made right now. */
  readonly remaining: number;
  /** Milliseconds until the bucket is full again. */
  readonly resetMs: number;
  /** Milliseconds until the next request would be allowed (0 when allowed). */
  readonly retryAfterMs: number;
}

/**
 * A requests-per-minute limit as a token bucket, the model OpenAI describes for its limits.
 *
 * The bucket holds `rpm` requests and refills continuously at `rpm / 60` per second, so a burst
 * of `rpm` requests passes, and then one more every `60 / rpm` seconds.
 *
 * @example
 * const limiter = new RequestRateLimiter(60, Date.now());
 * limiter.take(Date.now()).allowed; // true for the first 60 requests of a burst
 */
export class RequestRateLimiter {
  readonly #rpm: number;
  readonly #perMs: number;
  #tokens: number;
  #updatedAt: number;

  constructor(rpm: number, now: number) {
    if (!(rpm > 0))
      throw new RangeError(`rate limit must be a positive number of requests per minute`);
    this.#rpm = rpm;
    this.#perMs = rpm / 60_000;
    this.#tokens = rpm;
    this.#updatedAt = now;
  }

  /** Takes one request from the bucket if it holds one. */
  take(now: number): RateLimitDecision {
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.#rpm, this.#tokens + elapsed * this.#perMs);
    this.#updatedAt = now;
    const allowed = this.#tokens >= 1;
    if (allowed) this.#tokens -= 1;
    return {
      allowed,
      limit: this.#rpm,
      remaining: Math.floor(this.#tokens),
      resetMs: Math.ceil((this.#rpm - this.#tokens) / this.#perMs),
      retryAfterMs: allowed ? 0 : Math.ceil((1 - this.#tokens) / this.#perMs),
    };
  }
}

/**
 * A duration as OpenAI's `x-ratelimit-reset-*` headers write it: `17ms`, `1s`, `6m0s`, `1h2m3s`.
 *
 * @example
 * formatResetDuration(90_500); // "1m30.5s"
 */
export function formatResetDuration(ms: number): string {
  const whole = Math.max(0, Math.ceil(ms));
  if (whole < 1000) return `${whole}ms`;
  const hours = Math.floor(whole / 3_600_000);
  const minutes = Math.floor((whole % 3_600_000) / 60_000);
  const seconds = Number(((whole % 60_000) / 1000).toFixed(3));
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/**
 * The `x-ratelimit-*-requests` headers OpenAI sends with every answer, for a decision.
 *
 * @example
 * rateLimitHeaders(limiter.take(Date.now()))["x-ratelimit-remaining-requests"]; // "59"
 */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  return {
    "x-ratelimit-limit-requests": String(decision.limit),
    "x-ratelimit-remaining-requests": String(decision.remaining),
    "x-ratelimit-reset-requests": formatResetDuration(decision.resetMs),
  };
}
