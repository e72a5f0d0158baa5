/**
 * Exponential backoff with full jitter: the wait before the attempt after `failedAttempts`
 * failed ones, uniform in [0, min(cap, base × 2^(failedAttempts − 1))). Callers that failed
 * together (an endpoint or a database restarting) do not all come back at the same instant.
 * Strata's one backoff formula: the inference retry policy and the store's write retries use it.
 *
 * @example
 * fullJitterBackoffMs(1, 250, 20_000); // in [0, 250)
 * fullJitterBackoffMs(3, 250, 20_000, () => 0.5); // 500
 */
export function fullJitterBackoffMs(
  failedAttempts: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  return random() * Math.min(capMs, baseMs * 2 ** Math.max(0, failedAttempts - 1));
}
