import { type Kysely, sql } from "kysely";
import { StrataError } from "../errors.js";
import type { Database, MaterializationStatus, RunStatus } from "./database.js";

/** A run as `strata runs` lists it. */
export interface RunSummary {
  readonly id: string;
  readonly status: RunStatus;
  readonly selection: string;
  readonly partitions: ReadonlyArray<string>;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly error: string | null;
  readonly maxCostUsd: string | null;
  readonly costUsd: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly resumedFrom: string | null;
  /** The project that started it (null for runs recorded before strata kept it). */
  readonly project: string | null;
  readonly projectFile: string | null;
}

/** One step of a run as `strata runs show` prints it. */
export interface RunStep {
  readonly materializationId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly status: MaterializationStatus;
  readonly rowCount: number | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly error: string | null;
  readonly dataVersion: string | null;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
  readonly costUsd: string;
}

function runsQuery(db: Kysely<Database>) {
  return db
    .selectFrom("strata.runs as r")
    .leftJoin("strata.cost_by_run as c", "c.run_id", "r.id")
    .select([
      "r.id",
      "r.status",
      "r.selection",
      "r.partitions",
      "r.started_at",
      "r.finished_at",
      "r.error",
      "r.max_cost_usd",
      "r.options",
      "r.resumed_from",
      "r.project",
      "r.project_file",
      sql<string>`coalesce(c.cost_usd, 0)::text`.as("cost_usd"),
    ]);
}

type RunRow = Awaited<ReturnType<ReturnType<typeof runsQuery>["execute"]>>[number];

function toSummary(r: RunRow): RunSummary {
  return {
    id: r.id,
    status: r.status,
    selection: r.selection,
    partitions: r.partitions,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: r.error,
    maxCostUsd: r.max_cost_usd,
    costUsd: r.cost_usd,
    options: r.options,
    resumedFrom: r.resumed_from,
    project: r.project,
    projectFile: r.project_file,
  };
}

/**
 * The most recent runs, newest first, with their cost from the ledger.
 *
 * @example
 * const runs = await listRuns(store.db, 20);
 */
export async function listRuns(
  db: Kysely<Database>,
  limit = 50,
): Promise<ReadonlyArray<RunSummary>> {
  const rows = await runsQuery(db)
    .orderBy("r.started_at", "desc")
    .orderBy("r.id", "desc")
    .limit(limit)
    .execute();
  return rows.map(toSummary);
}

/**
 * One run by its id or a unique prefix of it (at least 4 characters); `run_not_found` otherwise.
 *
 * @example
 * const run = await findRun(store.db, "01a2135");
 */
export async function findRun(db: Kysely<Database>, idOrPrefix: string): Promise<RunSummary> {
  const exact = await runsQuery(db).where("r.id", "=", idOrPrefix).executeTakeFirst();
  if (exact !== undefined) return toSummary(exact);
  if (idOrPrefix.length >= 4) {
    const pattern = `${idOrPrefix.replace(/[\\%_]/g, "\\$&")}%`;
    const matches = await runsQuery(db).where("r.id", "like", pattern).limit(2).execute();
    if (matches.length === 1) return toSummary(matches[0]!);
    if (matches.length > 1) {
      throw new StrataError(
        "run_not_found",
        `run id prefix "${idOrPrefix}" is ambiguous; give more of the id`,
      );
    }
  }
  throw new StrataError("run_not_found", `no run has the id "${idOrPrefix}"; see "strata runs"`);
}

/** The steps of a run, in the order they were planned. */
export async function runSteps(
  db: Kysely<Database>,
  runId: string,
): Promise<ReadonlyArray<RunStep>> {
  const rows = await db
    .selectFrom("strata.materializations")
    .select([
      "id",
      "asset_key",
      "partition_key",
      "status",
      "row_count",
      "started_at",
      "finished_at",
      "error",
      "data_version",
      "prompt_tokens",
      "cached_tokens",
      "completion_tokens",
      sql<string>`cost_usd::text`.as("cost_usd"),
    ])
    .where("run_id", "=", runId)
    .orderBy("id")
    .execute();
  return rows.map((r) => ({
    materializationId: r.id,
    assetKey: r.asset_key,
    partitionKey: r.partition_key,
    status: r.status,
    rowCount: r.row_count,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: r.error,
    dataVersion: r.data_version,
    promptTokens: r.prompt_tokens,
    cachedTokens: r.cached_tokens,
    completionTokens: r.completion_tokens,
    costUsd: r.cost_usd,
  }));
}

/**
 * The steps that succeeded in a run or in any run it resumed (following `resumed_from`), as
 * `[asset key, partition key]` pairs.
 *
 * @example
 * const done = await succeededInRunChain(store.db, runId);
 */
export async function succeededInRunChain(
  db: Kysely<Database>,
  runId: string,
): Promise<ReadonlyArray<{ assetKey: string; partitionKey: string | null }>> {
  const chain: string[] = [];
  for (let id: string | null = runId; id !== null && !chain.includes(id); ) {
    chain.push(id);
    const row = await db
      .selectFrom("strata.runs")
      .select("resumed_from")
      .where("id", "=", id)
      .executeTakeFirst();
    id = row?.resumed_from ?? null;
  }
  const rows = await db
    .selectFrom("strata.materializations")
    .select(["asset_key", "partition_key"])
    .where("run_id", "in", chain)
    .where("status", "=", "succeeded")
    .execute();
  return rows.map((r) => ({ assetKey: r.asset_key, partitionKey: r.partition_key }));
}

/** An upstream materialization that fed a step: where it came from and which version it was. */
export interface StepInput {
  readonly materializationId: string;
  readonly inputMaterializationId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly runId: string;
  readonly finishedAt: Date | null;
  readonly dataVersion: string | null;
}

/**
 * The provenance of a run's steps: for each materialization of the run, the upstream
 * materializations it read (from this run or earlier ones).
 *
 * @example
 * const inputs = await runInputs(store.db, runId);
 */
export async function runInputs(
  db: Kysely<Database>,
  runId: string,
): Promise<ReadonlyArray<StepInput>> {
  const rows = await db
    .selectFrom("strata.materializations as m")
    .innerJoin("strata.materialization_inputs as mi", "mi.materialization_id", "m.id")
    .innerJoin("strata.materializations as i", "i.id", "mi.input_materialization_id")
    .select([
      "m.id as materialization_id",
      "i.id as input_id",
      "i.asset_key",
      "i.partition_key",
      "i.run_id",
      "i.finished_at",
      "i.data_version",
    ])
    .where("m.run_id", "=", runId)
    .orderBy("m.id")
    .orderBy("i.asset_key")
    .orderBy("i.partition_key")
    .execute();
  return rows.map((r) => ({
    materializationId: r.materialization_id,
    inputMaterializationId: r.input_id,
    assetKey: r.asset_key,
    partitionKey: r.partition_key,
    runId: r.run_id,
    finishedAt: r.finished_at,
    dataVersion: r.data_version,
  }));
}
