import { setTimeout as sleep } from "node:timers/promises";
import {
  DEFAULT_WRITE_RETRY,
  type WriteRetryPolicy,
  writeRetryDelayMs,
} from "./write-retry-policy.js";

/**
 * What a {@link GroupCommit} does once a batch failed for good (every attempt failed):
 * - `pause`: the batch's items that `retained` returns (all, by default) go back to the front of
 *   the queue, in order; waiting flushes reject with the error; nothing is written until the next
 *   `enqueue` or `flush`, which tries them again.
 * - `stop`: nothing is ever written again (`enqueue` answers false); `stopped` turns what was not
 *   written (the batch and everything queued) and the database error into the error every flush
 *   rejects with from then on.
 */
export type GroupCommitFailure<T> =
  | {
      readonly mode: "pause";
      readonly retained?: (batch: ReadonlyArray<T>, error: unknown) => ReadonlyArray<T>;
    }
  | {
      readonly mode: "stop";
      readonly stopped: (unwritten: ReadonlyArray<T>, cause: unknown) => Error;
    };

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions<T, R> {
  /** Writes one batch (throws to have it retried); what it resolves with goes to `written`. */
  readonly write: (batch: ReadonlyArray<T>) => Promise<R>;
  /** Called once a batch is written, after the bookkeeping and before waiting flushes resolve. */
  readonly written?: (batch: ReadonlyArray<T>, result: R) => void;
  readonly failure: GroupCommitFailure<T>;
  /** Items one batch carries at most (default: no bound); items that jump the queue aside. */
  readonly maxItems?: number;
  /** Characters one batch carries at most beyond its first item (with `charsOf`). */
  readonly maxChars?: number;
  readonly charsOf?: (item: T) => number;
  /**
   * Items of one key are written once: an item queued while an earlier one of its key waits is
   * merged into it (`merge` may update `earlier` and return it), keeping the earlier's place.
   * A key of `undefined` is never merged.
   */
  readonly coalesce?: {
    readonly key: (item: T) => string | undefined;
    readonly merge: (earlier: T, later: T) => T;
  };
  /** Items that go with the next batch, whatever is queued ahead of them and beyond the bounds. */
  readonly jumpsQueue?: (item: T) => boolean;
  /** Batches start at least this far apart, unless a flush waits for them (default 0). */
  readonly minIntervalMs?: number;
  /** Batches written at once (default 1): what is queued meanwhile goes with the next one. */
  readonly maxInFlight?: number;
  readonly retry?: Partial<WriteRetryPolicy>;
  /** The jitter's source of randomness (default `Math.random`). */
  readonly random?: () => number;
  /** Told of each failed attempt that will be retried, with the wait before the next one. */
  readonly onRetry?: (failedAttempts: number, delayMs: number, error: unknown) => void;
}

interface Entry<T> {
  item: T;
  /** The order in which items were first queued: what a flush waits for. */
  seq: number;
  readonly key: string | undefined;
}

interface FlushWaiter {
  readonly upTo: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * A group commit: items are queued, and a write starts as soon as fewer than `maxInFlight` are in
 * flight (and `minIntervalMs` has passed since the last one started), carrying everything queued
 * meanwhile within the batch bounds. An idle writer writes right after the current turn of the
 * event loop (so what one turn queues shares a batch), never waiting on a timer it does not need;
 * a busy one batches by itself. A failed write is retried with jittered backoff, then handled as
 * `failure` says. A flush waits for what was queued before it, not for what comes later.
 *
 * @example
 * const commit = new GroupCommit<string>({
 *   write: async (batch) => { await insertAll(batch); },
 *   failure: { mode: "pause" },
 * });
 * commit.enqueue("a");
 * await commit.flush();
 */
export class GroupCommit<T, R = void> {
  readonly #options: GroupCommitOptions<T, R>;
  readonly #retry: WriteRetryPolicy;
  readonly #maxInFlight: number;
  readonly #minIntervalMs: number;
  /** Queued items, oldest first; and those that jump the queue, oldest first. */
  #queue: Entry<T>[] = [];
  #jumpers: Entry<T>[] = [];
  /** Queued entries by coalescing key. */
  readonly #byKey = new Map<string, Entry<T>>();
  /** The oldest sequence number and the size of each batch in flight. */
  readonly #inFlight = new Set<{ readonly firstSeq: number; readonly size: number }>();
  #inFlightItems = 0;
  #nextSeq = 0;
  #flushWaiters: FlushWaiter[] = [];
  #scheduled = false;
  #lastStart = Number.NEGATIVE_INFINITY;
  #paused = false;
  #stopped: Error | null = null;

  constructor(options: GroupCommitOptions<T, R>) {
    this.#options = options;
    this.#retry = { ...DEFAULT_WRITE_RETRY, ...options.retry };
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
    this.#minIntervalMs = Math.max(0, options.minIntervalMs ?? 0);
  }

  /** Batches being written now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Items not yet written: queued, or in a batch not yet committed. */
  get pending(): number {
    return this.#queue.length + this.#jumpers.length + this.#inFlightItems;
  }

  /** The error that stopped the writer for good (`stop` mode), or null. */
  get failure(): Error | null {
    return this.#stopped;
  }

  /**
   * Queues an item for a coming batch; false when the writer has stopped for good (the item is
   * not written).
   */
  enqueue(item: T): boolean {
    if (this.#stopped !== null) return false;
    this.#paused = false;
    const seq = this.#nextSeq++;
    const key = this.#options.coalesce?.key(item);
    const earlier = key === undefined ? undefined : this.#byKey.get(key);
    if (earlier !== undefined) {
      earlier.item = this.#options.coalesce!.merge(earlier.item, item);
    } else {
      const entry: Entry<T> = { item, seq, key };
      if (key !== undefined) this.#byKey.set(key, entry);
      (this.#options.jumpsQueue?.(item) ? this.#jumpers : this.#queue).push(entry);
    }
    if (this.#inFlight.size < this.#maxInFlight) this.#schedule();
    return true;
  }

  /**
   * Resolves once every item queued before it is written, starting their batches at once (the
   * interval aside); rejects when a batch fails for good first, or the writer has stopped.
   */
  flush(): Promise<void> {
    if (this.#stopped !== null) return Promise.reject(this.#stopped);
    this.#paused = false;
    const upTo = this.#nextSeq - 1;
    if (this.#oldestUnwritten() > upTo) return Promise.resolve();
    const flushed = new Promise<void>((resolve, reject) => {
      this.#flushWaiters.push({ upTo, resolve, reject });
    });
    this.#pump();
    return flushed;
  }

  #oldestUnwritten(): number {
    let oldest = Math.min(
      this.#queue[0]?.seq ?? Number.POSITIVE_INFINITY,
      this.#jumpers[0]?.seq ?? Number.POSITIVE_INFINITY,
    );
    for (const batch of this.#inFlight) oldest = Math.min(oldest, batch.firstSeq);
    return oldest;
  }

  /** A flush waits for a queued item: its batch does not wait for the interval. */
  #urgent(): boolean {
    const last = this.#flushWaiters.at(-1);
    if (last === undefined) return false;
    const oldestQueued = Math.min(
      this.#queue[0]?.seq ?? Number.POSITIVE_INFINITY,
      this.#jumpers[0]?.seq ?? Number.POSITIVE_INFINITY,
    );
    return last.upTo >= oldestQueued;
  }

  /**
   * Pumps after the current turn of the event loop (so what it queues shares a batch), or once
   * the interval since the last batch has passed.
   */
  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    const fire = () => {
      this.#scheduled = false;
      this.#pump();
    };
    const wait = this.#lastStart + this.#minIntervalMs - performance.now();
    if (wait <= 0) setImmediate(fire);
    else setTimeout(fire, wait);
  }

  /** Starts batches while fewer than `maxInFlight` are in flight and items are queued. */
  #pump(): void {
    while (
      !this.#paused &&
      this.#stopped === null &&
      this.#inFlight.size < this.#maxInFlight &&
      (this.#queue.length > 0 || this.#jumpers.length > 0)
    ) {
      if (this.#lastStart + this.#minIntervalMs > performance.now() && !this.#urgent()) {
        this.#schedule();
        return;
      }
      this.#startBatch();
    }
  }

  #startBatch(): void {
    const entries = [...this.#jumpers.splice(0), ...this.#queue.splice(0, this.#batchSize())];
    let firstSeq = Number.POSITIVE_INFINITY;
    for (const entry of entries) {
      if (entry.key !== undefined) this.#byKey.delete(entry.key);
      firstSeq = Math.min(firstSeq, entry.seq);
    }
    const batch = { firstSeq, size: entries.length };
    this.#inFlight.add(batch);
    this.#inFlightItems += entries.length;
    this.#lastStart = performance.now();
    const items = entries.map((e) => e.item);
    void this.#write(items).then((outcome) => {
      this.#inFlight.delete(batch);
      this.#inFlightItems -= entries.length;
      if ("result" in outcome) this.#options.written?.(items, outcome.result);
      else this.#failed(entries, outcome.error);
      this.#pump();
      const oldest = this.#oldestUnwritten();
      const done = this.#flushWaiters.filter((w) => w.upTo < oldest);
      if (done.length > 0) {
        this.#flushWaiters = this.#flushWaiters.filter((w) => w.upTo >= oldest);
        for (const w of done) w.resolve();
      }
    });
  }

  /** Queued items of the next batch: up to `maxItems`, and `maxChars` beyond the first. */
  #batchSize(): number {
    const limit = Math.min(this.#options.maxItems ?? Number.POSITIVE_INFINITY, this.#queue.length);
    const charsOf = this.#options.charsOf;
    const maxChars = this.#options.maxChars;
    if (charsOf === undefined || maxChars === undefined) return limit;
    let chars = 0;
    for (let i = 0; i < limit; i++) {
      chars += charsOf(this.#queue[i]!.item);
      if (chars > maxChars && i > 0) return i;
    }
    return limit;
  }

  /** One batch, retried with jittered backoff; resolves with its result or its last error. */
  async #write(items: ReadonlyArray<T>): Promise<{ result: R } | { error: unknown }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { result: await this.#options.write(items) };
      } catch (error) {
        if (attempt >= this.#retry.attempts) return { error };
        const delay = writeRetryDelayMs(this.#retry, attempt, this.#options.random);
        this.#options.onRetry?.(attempt, delay, error);
        await sleep(delay);
      }
    }
  }

  #failed(entries: ReadonlyArray<Entry<T>>, error: unknown): void {
    const failure = this.#options.failure;
    if (failure.mode === "stop") {
      // Already stopped by another batch: what this one carried is lost with the rest.
      if (this.#stopped !== null) return;
      const unwritten = [...entries, ...this.#jumpers, ...this.#queue].map((e) => e.item);
      this.#queue = [];
      this.#jumpers = [];
      this.#byKey.clear();
      this.#stopped = failure.stopped(unwritten, error);
      for (const w of this.#flushWaiters.splice(0)) w.reject(this.#stopped);
      return;
    }
    const items = entries.map((e) => e.item);
    const kept = new Set(failure.retained?.(items, error) ?? items);
    this.#requeue(entries.filter((e) => kept.has(e.item)));
    this.#paused = true;
    for (const w of this.#flushWaiters.splice(0)) w.reject(error);
  }

  /** Puts entries of a failed batch back in their place, merged with later items of their key. */
  #requeue(entries: ReadonlyArray<Entry<T>>): void {
    for (const entry of entries) {
      const later = entry.key === undefined ? undefined : this.#byKey.get(entry.key);
      if (later !== undefined) {
        later.item = this.#options.coalesce!.merge(entry.item, later.item);
        later.seq = entry.seq;
        continue;
      }
      if (entry.key !== undefined) this.#byKey.set(entry.key, entry);
      (this.#options.jumpsQueue?.(entry.item) ? this.#jumpers : this.#queue).push(entry);
    }
    this.#queue.sort((a, b) => a.seq - b.seq);
    this.#jumpers.sort((a, b) => a.seq - b.seq);
  }
}
