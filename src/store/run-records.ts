import { hostname } from "node:os";
import { type Kysely, sql } from "kysely";
import { StrataError } from "../errors.js";
import { isProcessAlive } from "../util/process-liveness.js";
import type { Database, RunStatus } from "./database.js";
import { storableMessage } from "./stored-text.js";

/** A new run row. */
export interface NewRun {
  readonly id: string;
  readonly selection: string;
  readonly partitions: ReadonlyArray<string>;
  readonly options: Readonly<Record<string, unknown>>;
  readonly maxCostUsd: string | null;
  readonly resumedFrom: string | null;
  /** The project that started it: `defineProject({ name })` (or its directory's name) and file. */
  readonly project?: { readonly name: string; readonly file: string | null } | null;
}

/** A step planned in a run, recorded before anything runs. */
export interface PlannedMaterialization {
  readonly id: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly codeVersion: string | null;
  readonly depKeys: ReadonlyArray<string>;
}

/** What a successful step writes. */
export interface MaterializationSuccess {
  readonly dataVersion: string;
  readonly rowCount: number;
  readonly storagePath: string;
  /** The SHA-256 (hex) of the file at `storagePath`, checked when the file is read back. */
  readonly storageSha256?: string | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly inputIds: ReadonlyArray<string>;
  readonly startedAt: Date;
}

/**
 * Writes a run and its planned steps in one transaction, owned by this process. A resume is
 * refused (`run_not_resumable`) when another run already resumed the same run: two resumes
 * started at once serialize on the resumed run's row, and the second one records nothing.
 *
 * @example
 * await recordRunStart(db, run, steps);
 */
export async function recordRunStart(
  db: Kysely<Database>,
  run: NewRun,
  steps: ReadonlyArray<PlannedMaterialization>,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    if (run.resumedFrom !== null) {
      await trx
        .selectFrom("strata.runs")
        .select("id")
        .where("id", "=", run.resumedFrom)
        .forUpdate()
        .execute();
      const newer = await trx
        .selectFrom("strata.runs")
        .select("id")
        .where("resumed_from", "=", run.resumedFrom)
        .executeTakeFirst();
      if (newer !== undefined) {
        throw new StrataError(
          "run_not_resumable",
          `run ${run.resumedFrom} was already resumed by run ${newer.id}; resume that one instead: strata runs resume ${newer.id}`,
        );
      }
    }
    await trx
      .insertInto("strata.runs")
      .values({
        id: run.id,
        status: "running",
        selection: run.selection,
        partitions: JSON.stringify(run.partitions),
        options: JSON.stringify(run.options),
        max_cost_usd: run.maxCostUsd,
        pid: process.pid,
        hostname: hostname(),
        resumed_from: run.resumedFrom,
        project: run.project?.name ?? null,
        project_file: run.project?.file ?? null,
      })
      .execute();
    for (let i = 0; i < steps.length; i += 2_000) {
      await trx
        .insertInto("strata.materializations")
        .values(
          steps.slice(i, i + 2_000).map((s) => ({
            id: s.id,
            run_id: run.id,
            asset_key: s.assetKey,
            partition_key: s.partitionKey,
            status: "planned" as const,
            code_version: s.codeVersion,
            dep_keys: JSON.stringify(s.depKeys),
          })),
        )
        .execute();
    }
  });
}

/** Records how a run ended (its error without secrets, storable whatever it quotes). */
export async function recordRunEnd(
  db: Kysely<Database>,
  id: string,
  status: Exclude<RunStatus, "running">,
  error: string | null,
): Promise<void> {
  await db
    .updateTable("strata.runs")
    .set({
      status,
      error: error === null ? null : storableMessage(error),
      finished_at: sql<Date>`clock_timestamp()`,
    })
    .where("id", "=", id)
    .execute();
}

/**
 * Marks as `failed` the runs of this host still `running` whose process is gone (killed, or
 * exited at a second Ctrl-C), with their unfinished steps. Returns the ids fixed up.
 *
 * @example
 * const fixed = await reapAbandonedRuns(db);
 */
export async function reapAbandonedRuns(
  db: Kysely<Database>,
  isAlive: (pid: number) => boolean = isProcessAlive,
): Promise<ReadonlyArray<string>> {
  const running = await db
    .selectFrom("strata.runs")
    .select(["id", "pid", "hostname"])
    .where("status", "=", "running")
    .execute();
  const here = hostname();
  const dead = running.filter(
    (r) => r.hostname === here && r.pid !== null && r.pid !== process.pid && !isAlive(r.pid),
  );
  for (const run of dead) {
    const error = `the process running it (pid ${run.pid}) ended without finishing the run; resume it with "strata runs resume ${run.id}"`;
    await db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable("strata.runs")
        .set({ status: "failed", error, finished_at: sql<Date>`clock_timestamp()` })
        .where("id", "=", run.id)
        .where("status", "=", "running")
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) return;
      await trx
        .updateTable("strata.materializations")
        .set({
          status: "failed",
          error: "the run's process ended while this step was running",
          finished_at: sql<Date>`clock_timestamp()`,
        })
        .where("run_id", "=", run.id)
        .where("status", "=", "running")
        .execute();
      await trx
        .updateTable("strata.materializations")
        .set({
          status: "canceled",
          error: "the run's process ended before this step started",
          finished_at: sql<Date>`clock_timestamp()`,
        })
        .where("run_id", "=", run.id)
        .where("status", "=", "planned")
        .execute();
    });
  }
  return dead.map((r) => r.id);
}
