// How the store's writers (src/store/group-commit.ts) retry a failed write.
import { fullJitterBackoffMs } from "../util/backoff.js";

/** How a failed write is retried: a number of attempts, with exponential backoff and full jitter. */
export interface WriteRetryPolicy {
  /** Attempts of one write before it fails for good (at least 1). */
  readonly attempts: number;
  /** The ceiling of the wait after the first failed attempt; it doubles after each one. */
  readonly baseMs: number;
  /** The ceiling never grows past this. */
  readonly capMs: number;
}

/**
 * The retry policy of a group commit whose options name none: 3 attempts, waits of 200 ms, then
 * 400 ms, 800 ms, ... on average (the fixed waits the writers used before the jitter), never
 * above 10 s.
 */
export const DEFAULT_WRITE_RETRY: WriteRetryPolicy = Object.freeze({
  attempts: 3,
  baseMs: 400,
  capMs: 10_000,
});

/**
 * The wait before the attempt after `failedAttempts` failed ones: full jitter, uniform in
 * [0, min(cap, base × 2^(failedAttempts − 1))), so writers that failed together (a database
 * restarting) do not all come back at the same instant.
 *
 * @example
 * const ms = writeRetryDelayMs(DEFAULT_WRITE_RETRY, 1); // in [0, 400)
 */
export function writeRetryDelayMs(
  policy: WriteRetryPolicy,
  failedAttempts: number,
  random: () => number = Math.random,
): number {
  return fullJitterBackoffMs(failedAttempts, policy.baseMs, policy.capMs, random);
}
