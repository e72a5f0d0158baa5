import { type Kysely, sql } from "kysely";
import { StoreError } from "../errors.js";
import { errorMessage } from "../util/error-message.js";
import type { Database, MaterializationStatus } from "./database.js";
import { GroupCommit } from "./group-commit.js";
import type { MaterializationSuccess } from "./run-records.js";
import { storableJson, storableMessage } from "./stored-text.js";

/** A step state waiting to be written: the latest one of its materialization wins. */
interface PendingStep {
  status: Exclude<MaterializationStatus, "planned">;
  startedAt: Date | null;
  finishedAt: Date | null;
  dataVersion: string | null;
  rowCount: number | null;
  storagePath: string | null;
  storageSha256: string | null;
  metadata: Readonly<Record<string, unknown>> | null;
  error: string | null;
  inputIds: ReadonlyArray<string>;
}

/** One queued step state, by materialization id. */
interface QueuedStep {
  readonly id: string;
  readonly state: PendingStep;
}

/** Options of {@link StepRecorder}. */
export interface StepRecorderOptions {
  /**
   * Commit without waiting for the WAL flush (Postgres servers only): a server crash can lose
   * the last fraction of a second of step states, which resume rebuilds anyway. The run row,
   * written synchronously after the last batch, flushes them.
   */
  readonly relaxedCommit?: boolean;
  /** Attempts of one batch before the recorder gives up (default 3). */
  readonly writeAttempts?: number;
  /**
   * Batches start at most this often (default {@link STEP_RECORD_INTERVAL_MS}), so a chain of
   * quick steps shares transactions instead of paying one per step.
   */
  readonly intervalMs?: number;
}

/** How often step states are written while steps keep ending: well under a second of work. */
export const STEP_RECORD_INTERVAL_MS = 20;

/** Step states that could not be written (code `record_failed`); the database error is `cause`. */
export class StepRecordError extends StoreError {
  readonly #ids: Set<string>;

  constructor(materializationIds: ReadonlyArray<string>, cause: unknown) {
    super(
      "record_failed",
      `could not record ${materializationIds.length} step state${materializationIds.length === 1 ? "" : "s"} in the database (${errorMessage(cause)}); resume the run once the database is back`,
      { cause },
    );
    this.name = "StepRecordError";
    this.#ids = new Set(materializationIds);
  }

  /** The materializations whose last state was not written, also those queued after the error. */
  get materializationIds(): ReadonlyArray<string> {
    return [...this.#ids];
  }

  /** @internal A state queued after the recorder stopped: it is not written either. */
  lost(id: string): void {
    this.#ids.add(id);
  }
}

/**
 * Writes the step states of a run (running, succeeded with its provenance, failed, skipped,
 * canceled) by group commit ({@link GroupCommit}): a state is queued, and whatever is queued is
 * written in one transaction as soon as the previous batch committed (and at most every
 * `intervalMs`). A step therefore never waits on the database, and a thousand trivial steps cost
 * tens of transactions instead of thousands.
 *
 * Each succeeded state and its provenance rows are in the same transaction, so a step is never
 * recorded succeeded without what it read. States of one materialization are coalesced (a step
 * that started and ended within one batch is written once) and batches are written one at a
 * time, in order. A batch that fails is retried with jittered backoff; after the last attempt
 * the recorder stops writing for good and {@link flush} rejects with a {@link StepRecordError}
 * naming what was not written.
 *
 * @example
 * const recorder = new StepRecorder(store.db);
 * recorder.started(materializationId, new Date());
 * recorder.succeeded(materializationId, success, new Date());
 * await recorder.flush();
 */
export class StepRecorder {
  readonly #commit: GroupCommit<QueuedStep>;
  #failure: StepRecordError | null = null;

  constructor(db: Kysely<Database>, options: StepRecorderOptions = {}) {
    const relaxedCommit = options.relaxedCommit ?? false;
    this.#commit = new GroupCommit<QueuedStep>({
      write: (batch) =>
        db.transaction().execute(async (trx) => {
          if (relaxedCommit) await sql`set local synchronous_commit = off`.execute(trx);
          await writeBatch(trx, new Map(batch.map((step) => [step.id, step.state])));
        }),
      failure: {
        mode: "stop",
        stopped: (unwritten, cause) => {
          this.#failure = new StepRecordError(
            unwritten.map((step) => step.id),
            cause,
          );
          return this.#failure;
        },
      },
      // The latest state of a materialization wins; a step that started in this batch keeps its
      // start time when its end replaces it.
      coalesce: {
        key: (step) => step.id,
        merge: (earlier, later) => ({
          id: later.id,
          state: { ...later.state, startedAt: later.state.startedAt ?? earlier.state.startedAt },
        }),
      },
      minIntervalMs: Math.max(0, options.intervalMs ?? STEP_RECORD_INTERVAL_MS),
      maxInFlight: 1,
      retry: { attempts: Math.max(1, options.writeAttempts ?? 3) },
    });
  }

  /** The error that stopped the recorder, if a batch could not be written. */
  get failure(): StepRecordError | null {
    return this.#failure;
  }

  /** Queues "running since `at`". */
  started(id: string, at: Date): void {
    this.#queue(id, {
      status: "running",
      startedAt: at,
      finishedAt: null,
      dataVersion: null,
      rowCount: null,
      storagePath: null,
      storageSha256: null,
      metadata: null,
      error: null,
      inputIds: [],
    });
  }

  /** Queues a success with its provenance (written in the same transaction). */
  succeeded(id: string, success: MaterializationSuccess, finishedAt: Date): void {
    this.#queue(id, {
      status: "succeeded",
      startedAt: success.startedAt,
      finishedAt,
      dataVersion: success.dataVersion,
      rowCount: success.rowCount,
      storagePath: success.storagePath,
      storageSha256: success.storageSha256 ?? null,
      metadata: success.metadata,
      error: null,
      inputIds: success.inputIds,
    });
  }

  /** Queues a step that failed, was skipped or was canceled. */
  ended(
    id: string,
    status: Exclude<MaterializationStatus, "planned" | "running" | "succeeded">,
    error: string | null,
    finishedAt: Date,
    metadata?: Readonly<Record<string, unknown>>,
  ): void {
    this.#queue(id, {
      status,
      startedAt: null,
      finishedAt,
      dataVersion: null,
      rowCount: null,
      storagePath: null,
      storageSha256: null,
      metadata: metadata ?? null,
      error,
      inputIds: [],
    });
  }

  /**
   * Resolves when every state queued before it is committed (writing them at once, the interval
   * aside); rejects with the {@link StepRecordError} once a batch could not be written.
   */
  flush(): Promise<void> {
    return this.#commit.flush();
  }

  #queue(id: string, state: PendingStep): void {
    if (!this.#commit.enqueue({ id, state })) this.#failure?.lost(id);
  }
}

/** One batch: provenance rows, then every step's state, each in a single statement. */
async function writeBatch(
  trx: Kysely<Database>,
  batch: ReadonlyMap<string, PendingStep>,
): Promise<void> {
  const inputs: { m: string; i: string }[] = [];
  const states: Record<string, unknown>[] = [];
  for (const [id, s] of batch) {
    for (const input of s.inputIds) inputs.push({ m: id, i: input });
    states.push({
      id,
      status: s.status,
      started_at: s.startedAt?.toISOString() ?? null,
      finished_at: s.finishedAt?.toISOString() ?? null,
      data_version: s.dataVersion,
      row_count: s.rowCount,
      storage_path: s.storagePath,
      storage_sha256: s.storageSha256,
      metadata: s.metadata,
      error: s.error === null ? null : storableMessage(s.error),
    });
  }
  // One JSON parameter per statement, however large the batch: no per-row parameters to
  // compile and bind. Its strings are made storable (a NUL in one error message would make
  // Postgres refuse the whole batch) and carry no secret (an error's stack in the metadata).
  if (inputs.length > 0) {
    await sql`insert into strata.materialization_inputs (materialization_id, input_materialization_id)
      select x.m, x.i from jsonb_to_recordset(${storableJson(inputs)}::jsonb) as x(m text, i text)
      on conflict do nothing`.execute(trx);
  }
  await sql`update strata.materializations as m set
      status = v.status,
      started_at = coalesce(v.started_at, m.started_at),
      finished_at = v.finished_at,
      data_version = v.data_version,
      row_count = v.row_count,
      storage_path = v.storage_path,
      storage_sha256 = v.storage_sha256,
      metadata = coalesce(v.metadata, m.metadata),
      error = v.error
    from jsonb_to_recordset(${storableJson(states)}::jsonb) as v(
      id text, status text, started_at timestamptz, finished_at timestamptz, data_version text,
      row_count bigint, storage_path text, storage_sha256 text, metadata jsonb, error text)
    where m.id = v.id`.execute(trx);
}
