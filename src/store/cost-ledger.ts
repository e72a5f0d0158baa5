import type { Kysely } from "kysely";
import { StoreError } from "../errors.js";
import { errorMessage } from "../util/error-message.js";
import type { Database } from "./database.js";
import { GroupCommit, type GroupCommitFailure } from "./group-commit.js";
import {
  countDispatchesRelaxed,
  type LedgerEntry,
  refusedForItsContent,
  writeBatch,
  writeRowByRow,
} from "./ledger-rows.js";

export { insertLedgerRows, type LedgerEntry } from "./ledger-rows.js";

/** Rows one ledger write carries at most, when the options name no other bound. */
export const DEFAULT_LEDGER_MAX_BATCH = 256;
/**
 * Characters of answer and error text one ledger write carries at most (beyond its first row):
 * a batch of megabyte answers is split rather than sent as one statement of gigabytes.
 */
export const LEDGER_MAX_BATCH_CHARS = 16_000_000;
/**
 * Ledger writes in flight at once. One: rows get their ids in the order their calls ended (two
 * concurrent transactions on a server would not keep it), and what is queued while a write is
 * in flight makes the next one larger (on the embedded database, 1,900 instead of 2,400 writes
 * for 10,000 calls, each of them about half a millisecond of the process's CPU).
 */
export const DEFAULT_LEDGER_WRITES_IN_FLIGHT = 1;

/** Options of {@link CostLedger}. */
export interface CostLedgerOptions {
  /** Rows one write carries at most; the rest go with the next write (default 256). */
  readonly maxBatch?: number;
  /**
   * Writes in flight at once (default {@link DEFAULT_LEDGER_WRITES_IN_FLIGHT}): what accumulates
   * meanwhile goes with the next one.
   */
  readonly maxWritesInFlight?: number;
  /** Attempts of one write before it is reported as failed (default 5). */
  readonly writeAttempts?: number;
  /**
   * Postgres server only: dispatch counts are written on their own, one write in flight, and
   * commit without waiting for the WAL flush, so a call waits well under a millisecond to be
   * counted instead of a disk flush. Such a commit survives the process being killed and the
   * server restarting; only a crash of the server itself can lose the counts committed since the
   * last ledger row was written (rows stay synchronous, and flush the counts before them). Never
   * on the embedded database, whose WAL is flushed by nothing else (default false).
   */
  readonly relaxedDispatchCommit?: boolean;
}

/** A caller waiting for a write: a dispatch count, or a row's id. */
interface Waiter<V> {
  resolve(value: V): void;
  reject(error: unknown): void;
}

/** What the ledger queues: a row (with who waits for its id), or calls counted as dispatched. */
type LedgerItem =
  | { readonly kind: "row"; readonly entry: LedgerEntry; idWaiter: Waiter<number> | undefined }
  | { readonly kind: "dispatch"; readonly runId: string; count: number; waiters: Waiter<void>[] };

/**
 * The cost ledger's writer, a group commit ({@link GroupCommit}): rows and dispatch counts are
 * queued, and a write starts as soon as fewer than `maxWritesInFlight` are in flight, carrying
 * everything queued meanwhile (up to `maxBatch` rows, and every dispatch count). An idle ledger
 * writes at once, never waiting on a timer, and a busy one batches by itself, so what a crash can
 * lose of the answered calls is about one commit's latency. A write that fails (the database
 * restarting) is retried with jittered backoff; rows are never dropped silently: `flush()`
 * rejects while any are unwritten, and after a failed write nothing is written until the next
 * record, dispatch or flush. With `relaxedDispatchCommit` (Postgres), dispatch counts go in a
 * writer of their own, one write in flight, so a call never waits on a row insert.
 *
 * Every call is counted as dispatched, durably, before it is sent ({@link recordDispatch}), so
 * after a crash `runs.calls_dispatched` minus the recorded outcomes is the number of calls lost in
 * flight: never fewer than the endpoint billed without strata recording the answer.
 *
 * @example
 * const ledger = new CostLedger(store.db);
 * await ledger.recordDispatch(runId);   // then send the call
 * ledger.record(entry);                 // its outcome
 * await ledger.flush();
 */
export class CostLedger {
  readonly #db: Kysely<Database>;
  /** Rows, and dispatch counts unless they have a writer of their own. */
  readonly #rows: GroupCommit<LedgerItem, number[]>;
  /** Dispatch counts in relaxed commits (with `relaxedDispatchCommit`). */
  readonly #counts: GroupCommit<LedgerItem> | null;
  #recorded = 0;
  #written = 0;
  #writes = 0;

  constructor(db: Kysely<Database>, options: CostLedgerOptions = {}) {
    this.#db = db;
    const retry = { attempts: options.writeAttempts ?? 5 };
    const failure: GroupCommitFailure<LedgerItem> = {
      mode: "pause",
      retained: (batch, error) => this.#failed(batch, error),
    };
    const coalesce = {
      key: (item: LedgerItem) => (item.kind === "dispatch" ? item.runId : undefined),
      merge: (earlier: LedgerItem, later: LedgerItem) => {
        if (earlier.kind === "dispatch" && later.kind === "dispatch") {
          earlier.count += later.count;
          earlier.waiters.push(...later.waiters);
        }
        return earlier;
      },
    };
    this.#rows = new GroupCommit<LedgerItem, number[]>({
      write: (batch) => this.#writeRows(batch),
      written: (batch, ids) => this.#writtenRows(batch, ids),
      failure,
      maxItems: Math.max(1, Math.min(1_000, options.maxBatch ?? DEFAULT_LEDGER_MAX_BATCH)),
      maxChars: LEDGER_MAX_BATCH_CHARS,
      charsOf: (item) =>
        item.kind === "row"
          ? (item.entry.output?.length ?? 0) + (item.entry.error?.length ?? 0)
          : 0,
      // a call waits for its count before it is sent: counts go with the next write
      jumpsQueue: (item) => item.kind === "dispatch",
      coalesce,
      maxInFlight: Math.max(1, options.maxWritesInFlight ?? DEFAULT_LEDGER_WRITES_IN_FLIGHT),
      retry,
    });
    this.#counts =
      options.relaxedDispatchCommit === true
        ? new GroupCommit<LedgerItem>({
            write: (batch) => countDispatchesRelaxed(this.#db, dispatchCounts(batch)),
            written: (batch) => this.#writtenRows(batch, []),
            failure,
            coalesce,
            maxInFlight: 1,
            retry,
          })
        : null;
  }

  /** Rows written so far. */
  get written(): number {
    return this.#written;
  }

  /** Writes committed so far (rows and dispatch counts together). */
  get writes(): number {
    return this.#writes;
  }

  /** Writes in flight now (rows, and dispatch counts). */
  get writesInFlight(): number {
    return this.#rows.inFlight + (this.#counts?.inFlight ?? 0);
  }

  /** Rows waiting to be written (buffered, or in a write not yet committed). */
  get pending(): number {
    return this.#recorded - this.#written;
  }

  /**
   * Counts a call as dispatched on `strata.runs.calls_dispatched` (once per document and model)
   * and resolves once the count is committed: send the call after that, so a crash can never hide
   * a billed call. Counts of calls sent at about the same time share one write. Rejects when the
   * count could not be written (a `StoreError`); the call is then not counted and must not be
   * sent.
   */
  recordDispatch(runId: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      (this.#counts ?? this.#rows).enqueue({
        kind: "dispatch",
        runId,
        count: 1,
        waiters: [{ resolve, reject }],
      });
    });
  }

  /** Buffers one row; it goes with the next write. */
  record(entry: LedgerEntry): void {
    this.#recorded += 1;
    this.#rows.enqueue({ kind: "row", entry, idWaiter: undefined });
  }

  /**
   * Buffers one row like {@link record}, and resolves with its `id` once it is written: what a
   * later row names in `cached_from`. Rejects when the write fails for good (the row itself is
   * kept for a later write, as every row is).
   */
  recordForId(entry: LedgerEntry): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#recorded += 1;
      this.#rows.enqueue({ kind: "row", entry, idWaiter: { resolve, reject } });
    });
  }

  /**
   * Writes every row recorded so far; rejects if a write fails for good before they are all
   * written (the rows are kept: a later flush tries them again).
   */
  flush(): Promise<void> {
    return this.#rows.flush();
  }

  /**
   * Writes one batch: rows and dispatch counts together. A batch the database refuses is
   * written again row by row, so that a row it refuses on its own (see {@link writeRowByRow})
   * never keeps the others out of the ledger. Resolves with the rows' ids, in order.
   */
  async #writeRows(batch: ReadonlyArray<LedgerItem>): Promise<number[]> {
    const rows = batch.flatMap((item) => (item.kind === "row" ? [item.entry] : []));
    const dispatches = dispatchCounts(batch);
    try {
      return await writeBatch(this.#db, rows, dispatches);
    } catch (batchError) {
      if (rows.length === 0 || !refusedForItsContent(batchError)) throw batchError;
      try {
        return await writeRowByRow(this.#db, rows, dispatches);
      } catch (rowError) {
        throw rowError ?? batchError;
      }
    }
  }

  #writtenRows(batch: ReadonlyArray<LedgerItem>, ids: ReadonlyArray<number>): void {
    this.#writes += 1;
    let row = 0;
    for (const item of batch) {
      if (item.kind === "dispatch") {
        for (const w of item.waiters) w.resolve();
        continue;
      }
      item.idWaiter?.resolve(ids[row]!);
      row += 1;
    }
    this.#written += row;
  }

  /**
   * Keeps the rows for a later write, in order. The calls whose dispatch could not be counted
   * are not sent, so their counts are dropped; who waits for a row's id is told now rather than
   * left waiting on a database that may not come back.
   */
  #failed(batch: ReadonlyArray<LedgerItem>, error: unknown): LedgerItem[] {
    const notCounted = new StoreError(
      "db_unreachable",
      `the cost ledger could not count a call as dispatched, so it was not sent: ${errorMessage(error)}`,
      { cause: error },
    );
    const kept: LedgerItem[] = [];
    for (const item of batch) {
      if (item.kind === "dispatch") {
        for (const w of item.waiters) w.reject(notCounted);
        continue;
      }
      item.idWaiter?.reject(error);
      item.idWaiter = undefined;
      kept.push(item);
    }
    return kept;
  }
}

/** The dispatch counts of a batch, per run. */
function dispatchCounts(batch: ReadonlyArray<LedgerItem>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of batch) {
    if (item.kind === "dispatch")
      counts.set(item.runId, (counts.get(item.runId) ?? 0) + item.count);
  }
  return counts;
}
