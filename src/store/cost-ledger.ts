import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";

/** One row of `strata.inference_calls` as the fan-out writes it. */
export interface LedgerEntry {
  readonly runId: string;
  readonly materializationId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly documentId: string;
  readonly model: string;
  readonly providerModel: string;
  readonly endpoint: string;
  readonly requestHash: string;
  readonly status: "succeeded" | "failed";
  readonly attempts: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
  readonly reasoningTokens: number;
  /** Decimal strings, snapshotted from the model's price. */
  readonly inputPricePerMTok: string;
  readonly cachedInputPricePerMTok: string;
  readonly outputPricePerMTok: string;
  readonly latencyMs: number | null;
  readonly cacheHit: boolean;
  readonly cachedFrom: number | null;
  readonly error: string | null;
  /** The answer's text: what a later identical request is answered with. */
  readonly output: string | null;
}

/** A succeeded, billed call that can answer an identical request. */
export interface CachedAnswer {
  readonly id: number;
  readonly requestHash: string;
  readonly output: string;
}

/** Ledger batches written at once (of a Postgres pool of 10 connections). */
const MAX_PARALLEL_WRITES = 2;

/** Options of {@link CostLedger}. */
export interface CostLedgerOptions {
  /** Rows are written at least this often (default 200 ms). */
  readonly flushIntervalMs?: number;
  /** A batch this large is written at once (default 128 rows). */
  readonly maxBatch?: number;
  /** Attempts of one batch write before it is reported as failed (default 5). */
  readonly writeAttempts?: number;
}

/**
 * The cost ledger's writer: rows are buffered and written in batches (group commit), every
 * 128 rows and at least every 200 ms and at `flush()`, batches side by side, so the ledger
 * never holds up the fan-out and a crash loses about one interval of answered calls. A batch that fails to write (the database restarting) is
 * retried; rows are never dropped silently: `flush()` rejects while any are unwritten.
 *
 * @example
 * const ledger = new CostLedger(store.db);
 * ledger.record(entry);
 * await ledger.flush();
 */
export class CostLedger {
  readonly #db: Kysely<Database>;
  readonly #intervalMs: number;
  readonly #maxBatch: number;
  readonly #writeAttempts: number;
  #buffer: LedgerEntry[] = [];
  /** Calls sent since the last write, per run. */
  #dispatched = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** Batches waiting to be written; up to MAX_PARALLEL_WRITES are written side by side. */
  readonly #queue: Array<() => Promise<void>> = [];
  #running = 0;
  readonly #idle: Array<() => void> = [];
  #failure: unknown;
  #written = 0;

  constructor(db: Kysely<Database>, options: CostLedgerOptions = {}) {
    this.#db = db;
    this.#intervalMs = options.flushIntervalMs ?? 200;
    this.#maxBatch = options.maxBatch ?? 128;
    this.#writeAttempts = options.writeAttempts ?? 5;
  }

  /** Rows written so far. */
  get written(): number {
    return this.#written;
  }

  /** Rows waiting to be written. */
  get pending(): number {
    return this.#buffer.length;
  }

  /**
   * Counts a call as sent (once per document and model). The count is written with the next
   * batch, so a crash leaves `runs.calls_dispatched` minus the recorded outcomes: the calls that
   * were lost in flight.
   */
  dispatched(runId: string): void {
    this.#dispatched.set(runId, (this.#dispatched.get(runId) ?? 0) + 1);
    this.#timer ??= setTimeout(() => this.#startWrite(), this.#intervalMs);
  }

  /** Buffers one row; it is written within the flush interval. */
  record(entry: LedgerEntry): void {
    this.#buffer.push(entry);
    if (this.#buffer.length >= this.#maxBatch) this.#startWrite();
    else this.#timer ??= setTimeout(() => this.#startWrite(), this.#intervalMs);
  }

  /** Writes everything buffered; rejects if a batch could not be written. */
  async flush(): Promise<void> {
    this.#startWrite();
    if (this.#running > 0 || this.#queue.length > 0) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    if (this.#failure !== undefined) {
      const failure = this.#failure;
      this.#failure = undefined;
      throw failure;
    }
  }

  #startWrite(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#buffer.length === 0 && this.#dispatched.size === 0) return;
    const batch = this.#buffer;
    const dispatched = this.#dispatched;
    this.#buffer = [];
    this.#dispatched = new Map();
    this.#queue.push(() => this.#write(batch, dispatched));
    this.#pump();
  }

  /**
   * Starts queued batches while fewer than MAX_PARALLEL_WRITES are being written: one slow commit
   * holds up no other batch, and the ledger never takes every pooled connection from the run.
   */
  #pump(): void {
    while (this.#running < MAX_PARALLEL_WRITES && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      this.#running += 1;
      void job().finally(() => {
        this.#running -= 1;
        this.#pump();
        if (this.#running === 0 && this.#queue.length === 0) {
          for (const resolve of this.#idle.splice(0)) resolve();
        }
      });
    }
  }

  async #write(batch: ReadonlyArray<LedgerEntry>, dispatched: Map<string, number>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#db.transaction().execute(async (trx) => {
          await insertLedgerRows(trx, batch);
          for (const [runId, count] of dispatched) {
            await trx
              .updateTable("strata.runs")
              .set((eb) => ({ calls_dispatched: eb("calls_dispatched", "+", count) }))
              .where("id", "=", runId)
              .execute();
          }
        });
        this.#written += batch.length;
        return;
      } catch (error) {
        if (attempt >= this.#writeAttempts) {
          // Keep the rows and counts: a later flush tries them again.
          this.#buffer = [...batch, ...this.#buffer];
          for (const [runId, count] of dispatched) {
            this.#dispatched.set(runId, (this.#dispatched.get(runId) ?? 0) + count);
          }
          this.#failure = error;
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
  }
}

/** Inserts ledger rows in one statement per 1 000 rows. */
export async function insertLedgerRows(
  db: Kysely<Database>,
  rows: ReadonlyArray<LedgerEntry>,
): Promise<void> {
  for (let i = 0; i < rows.length; i += 1_000) {
    await db
      .insertInto("strata.inference_calls")
      .values(
        rows.slice(i, i + 1_000).map((e) => ({
          run_id: e.runId,
          materialization_id: e.materializationId,
          asset_key: e.assetKey,
          partition_key: e.partitionKey,
          document_id: e.documentId,
          model: e.model,
          provider_model: e.providerModel,
          endpoint: e.endpoint,
          request_hash: e.requestHash,
          status: e.status,
          attempts: e.attempts,
          prompt_tokens: e.promptTokens,
          cached_tokens: e.cachedTokens,
          completion_tokens: e.completionTokens,
          reasoning_tokens: e.reasoningTokens,
          input_price_per_mtok: e.inputPricePerMTok,
          cached_input_price_per_mtok: e.cachedInputPricePerMTok,
          output_price_per_mtok: e.outputPricePerMTok,
          latency_ms: e.latencyMs,
          cache_hit: e.cacheHit,
          cached_from: e.cachedFrom,
          error: e.error,
          output: e.output,
        })),
      )
      .execute();
  }
}

/**
 * The earliest succeeded, billed call for each of `hashes`: what answers an identical request
 * without calling the endpoint.
 *
 * @example
 * const answers = await findCachedAnswers(store.db, hashes);
 */
export async function findCachedAnswers(
  db: Kysely<Database>,
  hashes: ReadonlyArray<string>,
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
      .orderBy("request_hash")
      .orderBy("id")
      .execute();
    for (const r of rows) {
      answers.set(r.request_hash, {
        id: r.id,
        requestHash: r.request_hash,
        output: r.output ?? "",
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
