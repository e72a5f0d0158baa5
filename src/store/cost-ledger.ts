import { type Kysely, sql } from "kysely";
import { StoreError } from "../errors.js";
import type { Database } from "./database.js";
import {
  insertLedgerRows,
  type LedgerEntry,
  ledgerRow,
  refusedForItsContent,
  writeRowByRow,
} from "./ledger-rows.js";
import { decodeStoredText } from "./stored-text.js";

export { insertLedgerRows, type LedgerEntry } from "./ledger-rows.js";

/** A succeeded, billed call that can answer an identical request. */
export interface CachedAnswer {
  readonly id: number;
  readonly requestHash: string;
  readonly output: string;
}

/** Rows one ledger write carries at most, when the options name no other bound. */
export const DEFAULT_LEDGER_MAX_BATCH = 256;
/**
 * Characters of answer and error text one ledger write carries at most (beyond its first row):
 * a batch of megabyte answers is split rather than sent as one statement of gigabytes.
 */
export const LEDGER_MAX_BATCH_CHARS = 16_000_000;
/** Ledger writes in flight at once (of a Postgres pool of 10 connections). */
export const DEFAULT_LEDGER_WRITES_IN_FLIGHT = 2;

/** Options of {@link CostLedger}. */
export interface CostLedgerOptions {
  /** Rows one write carries at most; the rest go with the next write (default 256). */
  readonly maxBatch?: number;
  /** Writes in flight at once (default 2): what accumulates meanwhile goes with the next one. */
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

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
}

/** A caller of {@link CostLedger.recordForId} waiting for its row's id. */
interface IdWaiter {
  resolve(id: number): void;
  reject(error: unknown): void;
}

/** A `flush()` waiting for the rows recorded up to `upTo` to be written. */
interface FlushWaiter extends Waiter {
  readonly upTo: number;
}

/**
 * The cost ledger's writer, a group commit: rows and dispatch counts are buffered, and a write
 * starts as soon as fewer than `maxWritesInFlight` are in flight, carrying everything buffered
 * meanwhile (up to `maxBatch` rows). An idle ledger writes at once, never waiting on a timer, and a
 * busy one batches by itself, so what a crash can lose of the answered calls is about one commit's
 * latency. A write that fails (the database restarting) is retried; rows are never dropped
 * silently: `flush()` rejects while any are unwritten. With `relaxedDispatchCommit` (Postgres),
 * dispatch counts go in one more write of their own, so a call never waits on a row insert.
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
  readonly #maxBatch: number;
  readonly #maxWrites: number;
  readonly #writeAttempts: number;
  readonly #relaxedDispatch: boolean;
  /** Rows not yet written, oldest first, and their sequence numbers. */
  #rows: LedgerEntry[] = [];
  #seqs: number[] = [];
  /** Who waits for each row's id (see {@link recordForId}), in step with `#rows`. */
  #idWaiters: (IdWaiter | undefined)[] = [];
  #nextSeq = 0;
  /** Calls about to be sent and not yet counted on `strata.runs`, per run. */
  #dispatches = new Map<string, number>();
  /** The senders of those calls, waiting for the count to be written. */
  #dispatchWaiters: Waiter[] = [];
  /** The first row sequence number of each write of rows in flight (Infinity: no rows). */
  readonly #inFlight = new Set<{ readonly firstSeq: number }>();
  /** A write of dispatch counts alone is in flight (with `relaxedDispatchCommit`). */
  #countingDispatches = false;
  #scheduled = false;
  /** After a failed write nothing is written until the next record, dispatch or flush. */
  #paused = false;
  #flushWaiters: FlushWaiter[] = [];
  #written = 0;
  #writes = 0;

  constructor(db: Kysely<Database>, options: CostLedgerOptions = {}) {
    this.#db = db;
    this.#maxBatch = Math.max(1, Math.min(1_000, options.maxBatch ?? DEFAULT_LEDGER_MAX_BATCH));
    this.#maxWrites = Math.max(1, options.maxWritesInFlight ?? DEFAULT_LEDGER_WRITES_IN_FLIGHT);
    this.#writeAttempts = options.writeAttempts ?? 5;
    this.#relaxedDispatch = options.relaxedDispatchCommit === true;
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
    return this.#inFlight.size + (this.#countingDispatches ? 1 : 0);
  }

  /** Rows waiting to be written (buffered, or in a write not yet committed). */
  get pending(): number {
    return this.#nextSeq - this.#written;
  }

  /**
   * Counts a call as dispatched on `strata.runs.calls_dispatched` (once per document and model)
   * and resolves once the count is committed: send the call after that, so a crash can never hide
   * a billed call. Counts of calls sent at about the same time share one write. Rejects when the
   * count could not be written (a `StoreError`); the call is then not counted and must not be
   * sent.
   */
  recordDispatch(runId: string): Promise<void> {
    this.#dispatches.set(runId, (this.#dispatches.get(runId) ?? 0) + 1);
    const written = new Promise<void>((resolve, reject) => {
      this.#dispatchWaiters.push({ resolve, reject });
    });
    this.#schedule();
    return written;
  }

  /** Buffers one row; it goes with the next write. */
  record(entry: LedgerEntry): void {
    this.#rows.push(entry);
    this.#seqs.push(this.#nextSeq++);
    this.#idWaiters.push(undefined);
    this.#schedule();
  }

  /**
   * Buffers one row like {@link record}, and resolves with its `id` once it is written: what a
   * later row names in `cached_from`. Rejects when the write fails for good (the row itself is
   * kept for a later write, as every row is).
   */
  recordForId(entry: LedgerEntry): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#rows.push(entry);
      this.#seqs.push(this.#nextSeq++);
      this.#idWaiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Writes every row recorded so far; rejects if a write fails for good before they are all
   * written (the rows are kept: a later flush tries them again).
   */
  async flush(): Promise<void> {
    this.#paused = false;
    this.#pump();
    const upTo = this.#nextSeq - 1;
    if (this.#oldestUnwritten() > upTo) return;
    await new Promise<void>((resolve, reject) => {
      this.#flushWaiters.push({ upTo, resolve, reject });
    });
  }

  #oldestUnwritten(): number {
    let oldest = this.#seqs[0] ?? Number.POSITIVE_INFINITY;
    for (const write of this.#inFlight) oldest = Math.min(oldest, write.firstSeq);
    return oldest;
  }

  /**
   * Starts a write after the current turn of the event loop, so the answers and dispatches of one
   * turn share it, while no write ever waits on a timer.
   */
  #schedule(): void {
    this.#paused = false;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#pump();
    });
  }

  /** Starts writes while fewer than `maxWritesInFlight` are in flight and there is work. */
  #pump(): void {
    if (this.#paused) return;
    if (this.#relaxedDispatch && !this.#countingDispatches && this.#dispatches.size > 0) {
      this.#countingDispatches = true;
      this.#startWrite([], [], true, []);
    }
    while (
      !this.#paused &&
      this.#inFlight.size < this.#maxWrites &&
      (this.#rows.length > 0 || (!this.#relaxedDispatch && this.#dispatches.size > 0))
    ) {
      const n = this.#nextBatchSize();
      this.#startWrite(
        this.#rows.splice(0, n),
        this.#seqs.splice(0, n),
        !this.#relaxedDispatch,
        this.#idWaiters.splice(0, n),
      );
    }
  }

  /** Rows of the next write: up to `maxBatch`, and {@link LEDGER_MAX_BATCH_CHARS} of text. */
  #nextBatchSize(): number {
    let chars = 0;
    const limit = Math.min(this.#maxBatch, this.#rows.length);
    for (let i = 0; i < limit; i++) {
      const row = this.#rows[i]!;
      chars += (row.output?.length ?? 0) + (row.error?.length ?? 0);
      if (chars > LEDGER_MAX_BATCH_CHARS && i > 0) return i;
    }
    return limit;
  }

  /** Writes `rows`, and the dispatch counts buffered so far where `withDispatches`. */
  #startWrite(
    rows: LedgerEntry[],
    seqs: number[],
    withDispatches: boolean,
    idWaiters: (IdWaiter | undefined)[],
  ): void {
    const dispatches = withDispatches ? this.#dispatches : new Map<string, number>();
    const waiters = withDispatches ? this.#dispatchWaiters : [];
    if (withDispatches) {
      this.#dispatches = new Map();
      this.#dispatchWaiters = [];
    }
    const countsOnly = rows.length === 0;
    const write = { firstSeq: seqs[0] ?? Number.POSITIVE_INFINITY };
    if (!countsOnly || !this.#relaxedDispatch) this.#inFlight.add(write);
    const relaxed = countsOnly && this.#relaxedDispatch;
    void this.#write(rows, dispatches, relaxed).then(({ error, ids }) => {
      this.#inFlight.delete(write);
      if (relaxed) this.#countingDispatches = false;
      if (error === undefined) {
        this.#written += rows.length;
        this.#writes += 1;
        for (const w of waiters) w.resolve();
        for (const [i, w] of idWaiters.entries()) w?.resolve(ids[i]!);
      } else {
        // Keep the rows for a later write, in order. The calls whose dispatch could not be
        // counted are not sent, so their counts are dropped with them; who waits for a row's id
        // is told now rather than left waiting on a database that may not come back.
        this.#rows.unshift(...rows);
        this.#seqs.unshift(...seqs);
        this.#idWaiters.unshift(...rows.map(() => undefined));
        for (const w of idWaiters) w?.reject(error);
        this.#paused = true;
        const notCounted = new StoreError(
          "db_unreachable",
          `the cost ledger could not count a call as dispatched, so it was not sent: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
        for (const w of waiters) w.reject(notCounted);
        for (const w of this.#flushWaiters.splice(0)) w.reject(error);
      }
      this.#pump();
      const oldest = this.#oldestUnwritten();
      const done = this.#flushWaiters.filter((w) => w.upTo < oldest);
      if (done.length > 0) {
        this.#flushWaiters = this.#flushWaiters.filter((w) => w.upTo >= oldest);
        for (const w of done) w.resolve();
      }
    });
  }

  /**
   * Writes one batch, retrying with backoff; resolves with the rows' ids in order, or with the
   * error if every attempt failed. A batch the database refuses is written again row by row, so
   * that a row it refuses on its own (see {@link writeRowByRow}) never keeps the others out of
   * the ledger.
   */
  async #write(
    rows: ReadonlyArray<LedgerEntry>,
    dispatches: ReadonlyMap<string, number>,
    relaxed: boolean,
  ): Promise<{ error?: unknown; ids: ReadonlyArray<number> }> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (relaxed) await countDispatchesRelaxed(this.#db, dispatches);
        else return { ids: await writeBatch(this.#db, rows, dispatches) };
        return { ids: [] };
      } catch (batchError) {
        let error = batchError;
        if (!relaxed && rows.length > 0 && refusedForItsContent(batchError)) {
          const rowByRow = await writeRowByRow(this.#db, rows, dispatches).then(
            (ids): { ids: number[]; error?: undefined } => ({ ids }),
            (rowError: unknown) => ({ ids: [], error: rowError ?? batchError }),
          );
          if (rowByRow.error === undefined) return { ids: rowByRow.ids };
          error = rowByRow.error;
        }
        if (attempt >= this.#writeAttempts) return { error, ids: [] };
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
  }
}

/**
 * Adds dispatch counts without waiting for the WAL flush (Postgres only). One run's counts are
 * one statement, its own transaction, whose `set_config(..., true)` lasts until its commit: one
 * round trip. Several runs' counts share a transaction, so a retry never adds one twice.
 */
async function countDispatchesRelaxed(
  db: Kysely<Database>,
  dispatches: ReadonlyMap<string, number>,
): Promise<void> {
  const count = (q: Kysely<Database>, runId: string, n: number) =>
    sql`
      with relaxed as (select set_config('synchronous_commit', 'off', true))
      update strata.runs set calls_dispatched = calls_dispatched + ${n}
        from relaxed where id = ${runId}`.execute(q);
  const counts = [...dispatches];
  if (counts.length === 1) {
    await count(db, counts[0]![0], counts[0]![1]);
    return;
  }
  await db.transaction().execute(async (trx) => {
    for (const [runId, n] of counts) await count(trx, runId, n);
  });
}

/**
 * One batch in one statement where it can be (one round trip, atomic by itself): the rows, the
 * dispatch count of one run, or both through a data-modifying `with`; a transaction otherwise.
 * Resolves with the rows' ids, in the order of `rows`.
 */
async function writeBatch(
  db: Kysely<Database>,
  rows: ReadonlyArray<LedgerEntry>,
  dispatches: ReadonlyMap<string, number>,
): Promise<number[]> {
  const counts = [...dispatches];
  if (counts.length === 0) return insertLedgerRows(db, rows);
  if (counts.length === 1 && rows.length <= 1_000) {
    const [runId, count] = counts[0]!;
    const counted = db.with("counted", (qc) =>
      qc
        .updateTable("strata.runs")
        .set((eb) => ({ calls_dispatched: eb("calls_dispatched", "+", count) }))
        .where("id", "=", runId)
        .returning("id"),
    );
    if (rows.length === 0) {
      await counted.selectFrom("counted").select("id").execute();
      return [];
    }
    const inserted = await counted
      .insertInto("strata.inference_calls")
      .values(rows.map(ledgerRow))
      .returning("id")
      .execute();
    return inserted.map((r) => Number(r.id));
  }
  return db.transaction().execute(async (trx) => {
    const ids = await insertLedgerRows(trx, rows);
    for (const [runId, count] of counts) {
      await trx
        .updateTable("strata.runs")
        .set((eb) => ({ calls_dispatched: eb("calls_dispatched", "+", count) }))
        .where("id", "=", runId)
        .execute();
    }
    return ids;
  });
}

/**
 * The earliest succeeded, billed call with an answer for each of `hashes`: what answers an
 * identical request without calling the endpoint. An empty answer is never one, also on rows
 * that versions recording it as a success wrote. With `runIds`, only calls of those runs answer.
 *
 * @example
 * const answers = await findCachedAnswers(store.db, hashes);
 */
export async function findCachedAnswers(
  db: Kysely<Database>,
  hashes: ReadonlyArray<string>,
  runIds?: ReadonlyArray<string>,
): Promise<Map<string, CachedAnswer>> {
  const answers = new Map<string, CachedAnswer>();
  const unique = [...new Set(hashes)];
  for (let i = 0; i < unique.length; i += 5_000) {
    const chunk = unique.slice(i, i + 5_000);
    const rows = await db
      .selectFrom("strata.inference_calls")
      .distinctOn("request_hash")
      .select(["id", "request_hash", "output"])
      .where(sql<boolean>`request_hash = any(${chunk}::text[])`)
      .where("status", "=", "succeeded")
      .where("cache_hit", "=", false)
      .where("output", "is not", null)
      .where("output", "<>", "")
      .$if(runIds !== undefined, (q) => q.where(sql<boolean>`run_id = any(${runIds}::text[])`))
      .orderBy("request_hash")
      .orderBy("id")
      .execute();
    for (const r of rows) {
      answers.set(r.request_hash, {
        id: r.id,
        requestHash: r.request_hash,
        output: decodeStoredText(r.output ?? ""),
      });
    }
  }
  return answers;
}

/** Sets a materialization's token and cost totals from its ledger rows (exact, in SQL). */
export async function totalMaterializationCost(
  db: Kysely<Database>,
  materializationId: string,
): Promise<{
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  costUsd: string;
}> {
  const row = await db
    .selectFrom("strata.inference_calls")
    .select([
      sql<number>`coalesce(sum(prompt_tokens), 0)::bigint`.as("prompt_tokens"),
      sql<number>`coalesce(sum(cached_tokens), 0)::bigint`.as("cached_tokens"),
      sql<number>`coalesce(sum(completion_tokens), 0)::bigint`.as("completion_tokens"),
      sql<string>`coalesce(sum(cost_usd), 0)::text`.as("cost_usd"),
    ])
    .where("materialization_id", "=", materializationId)
    .executeTakeFirstOrThrow();
  await db
    .updateTable("strata.materializations")
    .set({
      prompt_tokens: row.prompt_tokens,
      cached_tokens: row.cached_tokens,
      completion_tokens: row.completion_tokens,
      cost_usd: row.cost_usd,
    })
    .where("id", "=", materializationId)
    .execute();
  return {
    promptTokens: row.prompt_tokens,
    cachedTokens: row.cached_tokens,
    completionTokens: row.completion_tokens,
    costUsd: row.cost_usd,
  };
}

/**
 * Calls a run sent whose outcome was never recorded (the process died with them in flight, or
 * they were aborted): calls counted as dispatched minus documents with a recorded outcome.
 *
 * @example
 * const lost = await callsLostInFlight(store.db, runId);
 */
export async function callsLostInFlight(db: Kysely<Database>, runId: string): Promise<number> {
  const row = await sql<{ lost: number }>`
    select greatest(0, r.calls_dispatched - (
             select count(distinct (c.materialization_id, c.document_id, c.model))
               from strata.inference_calls c
              where c.run_id = r.id and not c.cache_hit))::int as lost
      from strata.runs r where r.id = ${runId}`.execute(db);
  return row.rows[0]?.lost ?? 0;
}
