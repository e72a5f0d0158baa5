import { honouredDelayMs, parseResetDuration } from "./retry-policy.js";

/**
 * Limits the calls in flight to one endpoint, adapting to what the endpoint says: the limit
 * starts at `maxConcurrency`, halves on a 429 (at most once per `decreaseEveryMs`), grows back
 * by about one per round of successes (additive increase, multiplicative decrease), and pauses
 * all dispatch while `retry-after` or `x-ratelimit-remaining-requests: 0` says to.
 *
 * @example
 * await limiter.acquire(signal); try { ... limiter.onSuccess(headers); } finally { limiter.release(); }
 */
export class EndpointLimiter {
  readonly max: number;
  #limit: number;
  #inFlight = 0;
  #pausedUntil = 0;
  #lastDecrease = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #waiters: Array<() => void> = [];
  readonly #decreaseEveryMs: number;

  constructor(maxConcurrency: number, options: { readonly decreaseEveryMs?: number } = {}) {
    this.max = Math.max(1, Math.floor(maxConcurrency));
    this.#limit = this.max;
    this.#decreaseEveryMs = options.decreaseEveryMs ?? 1_000;
  }

  /** The current concurrency limit (between 1 and `max`). */
  get limit(): number {
    return Math.floor(this.#limit);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Waits for a free slot; rejects with the signal's reason when it aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#canStart()) {
      this.#inFlight += 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener("abort", onAbort);
        this.#inFlight += 1;
        resolve();
      };
      const onAbort = () => {
        const i = this.#waiters.indexOf(grant);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(grant);
      this.#schedule();
    });
  }

  /** Frees a slot taken by {@link acquire}. */
  release(): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    this.#drain();
  }

  /** A call succeeded: grow the limit and honour the endpoint's remaining-requests headers. */
  onSuccess(headers?: Headers): void {
    this.#limit = Math.min(this.max, this.#limit + 1 / Math.max(1, this.#limit));
    if (headers !== undefined && headers.get("x-ratelimit-remaining-requests") === "0") {
      // The reset header is the time until the whole window is back; the next single request is
      // allowed after about reset / limit.
      // A pause longer than a server delay is honoured (a daily window) is not taken.
      const reset = parseResetDuration(headers.get("x-ratelimit-reset-requests"));
      const limit = Number(headers.get("x-ratelimit-limit-requests"));
      const pause = honouredDelayMs(
        reset === null ? null : Number.isFinite(limit) && limit > 0 ? reset / limit : reset,
      );
      if (pause !== null) this.pauseFor(pause);
    }
  }

  /** The endpoint throttled us (a 429): halve the limit and wait as long as it asked, up to a minute. */
  onThrottle(retryAfterMs: number | null): void {
    const now = Date.now();
    if (now - this.#lastDecrease >= this.#decreaseEveryMs) {
      this.#limit = Math.max(1, this.#limit / 2);
      this.#lastDecrease = now;
    }
    const pause = honouredDelayMs(retryAfterMs);
    if (pause !== null) this.pauseFor(pause);
  }

  /** No call starts for `ms` milliseconds. */
  pauseFor(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + ms);
    this.#schedule();
  }

  #canStart(): boolean {
    return (
      this.#inFlight < Math.floor(this.#limit) &&
      Date.now() >= this.#pausedUntil &&
      this.#waiters.length === 0
    );
  }

  #drain(): void {
    while (
      this.#waiters.length > 0 &&
      this.#inFlight < Math.floor(this.#limit) &&
      Date.now() >= this.#pausedUntil
    ) {
      this.#waiters.shift()!();
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#waiters.length === 0) return;
    const wait = this.#pausedUntil - Date.now();
    // Not paused and at the limit: the next release() drains. Otherwise a timer must, even when
    // the pause ended between the caller's check and now.
    if (wait <= 0 && this.#inFlight >= Math.floor(this.#limit)) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#drain();
      },
      Math.max(0, wait),
    );
  }
}

/**
 * Requests and tokens per minute for one model, enforced before sending: a call waits until
 * the last minute's requests and estimated tokens leave room for it.
 *
 * @example
 * await bucket.take(estimatedTokens, signal);
 */
export class RateBucket {
  readonly #rpm: number | undefined;
  readonly #tpm: number | undefined;
  readonly #events: Array<{ at: number; tokens: number }> = [];
  #chain: Promise<void> = Promise.resolve();

  constructor(limits: { readonly rpm?: number | undefined; readonly tpm?: number | undefined }) {
    this.#rpm = limits.rpm;
    this.#tpm = limits.tpm;
  }

  get limited(): boolean {
    return this.#rpm !== undefined || this.#tpm !== undefined;
  }

  /** Waits until one request of `tokens` tokens fits in the last minute. Calls are served in order. */
  take(tokens: number, signal?: AbortSignal): Promise<void> {
    if (!this.limited) return Promise.resolve();
    const turn = this.#chain.then(() => this.#waitFor(tokens, signal));
    this.#chain = turn.catch(() => {});
    return turn;
  }

  async #waitFor(tokens: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      while (this.#events.length > 0 && this.#events[0]!.at <= now - 60_000) this.#events.shift();
      const used = this.#events.reduce((sum, e) => sum + e.tokens, 0);
      const requestsOk = this.#rpm === undefined || this.#events.length < this.#rpm;
      // A single request larger than the whole budget still goes, alone, once the window is empty.
      const tokensOk =
        this.#tpm === undefined || used + tokens <= this.#tpm || this.#events.length === 0;
      if (requestsOk && tokensOk) {
        this.#events.push({ at: now, tokens });
        return;
      }
      const oldest = this.#events[0]!.at;
      await new Promise<void>((resolve) => setTimeout(resolve, Math.max(5, oldest + 60_000 - now)));
    }
  }
}
