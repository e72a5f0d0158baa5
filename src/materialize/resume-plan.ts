import type { Kysely } from "kysely";
import { StrataError } from "../errors.js";
import type { AssetGraph } from "../lineage/asset-graph.js";
import type { Database } from "../store/database.js";
import { plannedSteps, resumesOf, runChain, spentByRuns } from "../store/run-chain.js";
import { findRun, type RunSummary, succeededInRunChain } from "../store/run-queries.js";
import { toFemtos } from "../util/decimal.js";
import {
  type MaterializationPlan,
  planSteps,
  remainingPlan,
  stepId,
} from "./materialization-plan.js";

/** What {@link planResume} needs. */
export interface ResumeRequest {
  readonly db: Kysely<Database>;
  /** The project: its graph, and its name and file (when known) to tell another project's runs. */
  readonly project: {
    readonly graph: AssetGraph;
    readonly name?: string | undefined;
    readonly file?: string | undefined;
  };
  /** The run to resume: its id or a unique prefix. */
  readonly run: string;
  /** `--max-cost`: a new cap for the chain (it may only cover what was spent already). */
  readonly maxCostUsd?: string;
  readonly now?: Date;
}

/** A resume, ready to run: the steps left and the budget and options it inherits. */
export interface ResumePlan {
  /** The run resumed (the newest run of its chain). */
  readonly run: RunSummary;
  /** The run resumed and every run it resumes, newest first. */
  readonly chain: ReadonlyArray<string>;
  /** The steps of the chain's plan that have not succeeded yet. */
  readonly plan: MaterializationPlan;
  /** The chain's cap: `--max-cost` when given, else the resumed run's. */
  readonly maxCostUsd: string | null;
  /** What the chain has spent so far (exact decimal); it counts against the cap. */
  readonly spentUsd: string;
  readonly noCache: boolean;
  readonly concurrency: number | undefined;
}

/**
 * Plans `strata runs resume`: the steps the run (and the runs it resumes) planned and that have
 * not succeeded, with the chain's budget and options. Refuses (`run_not_resumable`) a run that
 * is running, succeeded, or was resumed already (naming the newer run), and one whose planned
 * steps the loaded project does not have (naming them, or the project that started the run).
 *
 * @example
 * const resume = await planResume({ db: store.db, project, run: "01a2135" });
 */
export async function planResume(request: ResumeRequest): Promise<ResumePlan> {
  const { db, project } = request;
  const run = await findRun(db, request.run);
  await refuseFinished(db, run);
  const chain = (await runChain(db, run.id)).map((r) => r.id);

  const planned = await plannedSteps(db, chain);
  const now = request.now ?? new Date();
  const missing = planned.filter((s) => !hasStep(project.graph, s, now));
  if (missing.length > 0) throw notInProject(run, project, missing);
  const plan = planSteps(project.graph, {
    selection: run.selection,
    partitionKeys: run.partitions,
    steps: planned,
  });
  const done = new Set(
    (await succeededInRunChain(db, run.id)).map((s) => stepId(s.assetKey, s.partitionKey)),
  );
  const rest = remainingPlan(plan, done);
  if (rest.steps.length === 0) {
    throw new StrataError(
      "run_not_resumable",
      `every step of run ${run.id} has succeeded; there is nothing to resume`,
    );
  }

  const spentUsd = await spentByRuns(db, chain);
  if (request.maxCostUsd !== undefined && toFemtos(request.maxCostUsd) < toFemtos(spentUsd)) {
    throw new StrataError(
      "bad_usage",
      `--max-cost $${request.maxCostUsd} is less than the $${spentUsd} that run ${run.id}${chain.length > 1 ? " and the runs it resumes" : ""} spent already; the cap covers every resume of a run, so give more than $${spentUsd}`,
    );
  }
  const saved = run.options as { concurrency?: number; noCache?: boolean };
  return {
    run,
    chain,
    plan: rest,
    maxCostUsd: request.maxCostUsd ?? run.maxCostUsd,
    spentUsd,
    noCache: saved.noCache === true,
    concurrency: saved.concurrency,
  };
}

/** Refuses a run that is running, succeeded, or that a newer run resumed already. */
async function refuseFinished(db: Kysely<Database>, run: RunSummary): Promise<void> {
  if (run.status === "running") {
    throw new StrataError(
      "run_not_resumable",
      `run ${run.id} is still running; wait for it, or cancel it with Ctrl-C, then resume`,
    );
  }
  const later = await resumesOf(db, run.id);
  const newest = later.at(-1);
  if (newest !== undefined) {
    const by = later[0]!.id;
    const what =
      newest.id === by ? `run ${by}` : `run ${by} (newest in its chain: run ${newest.id})`;
    const next =
      newest.status === "succeeded"
        ? `, which succeeded; there is nothing to resume`
        : newest.status === "running"
          ? `, which is still running`
          : `; resume the newest run instead: strata runs resume ${newest.id}`;
    throw new StrataError(
      "run_not_resumable",
      `run ${run.id} was already resumed by ${what}${next}`,
    );
  }
  if (run.status === "succeeded") {
    throw new StrataError(
      "run_not_resumable",
      `run ${run.id} succeeded; there is nothing to resume`,
    );
  }
}

/** Whether the project still has the asset partition a run planned. */
function hasStep(
  graph: AssetGraph,
  step: { readonly assetKey: string; readonly partitionKey: string | null },
  now: Date,
): boolean {
  if (!graph.has(step.assetKey)) return false;
  const partitions = graph.get(step.assetKey).partitions;
  return step.partitionKey === null
    ? partitions === null
    : partitions?.has(step.partitionKey, now) === true;
}

function notInProject(
  run: RunSummary,
  project: ResumeRequest["project"],
  missing: ReadonlyArray<{ readonly assetKey: string; readonly partitionKey: string | null }>,
): StrataError {
  const shown = missing.slice(0, 5).map((s) => `"${stepId(s.assetKey, s.partitionKey)}"`);
  const more = missing.length > shown.length ? ` and ${missing.length - shown.length} more` : "";
  const steps = `${shown.join(", ")}${more}`;
  const named =
    project.name === undefined
      ? "this project"
      : `project "${project.name}"${project.file === undefined ? "" : ` (${project.file})`}`;
  if (run.project !== null && run.project !== project.name) {
    const from = run.projectFile === null ? "" : ` (${run.projectFile})`;
    return new StrataError(
      "run_not_resumable",
      `run ${run.id} belongs to project "${run.project}"${from}, not to ${named}, which has no ${steps}; resume it with that project${run.projectFile === null ? "" : `: strata --project ${run.projectFile} runs resume ${run.id}`}`,
    );
  }
  return new StrataError(
    "run_not_resumable",
    `run ${run.id} planned ${steps}, which ${named} no longer has; nothing was resumed: start a new run with strata materialize`,
  );
}
