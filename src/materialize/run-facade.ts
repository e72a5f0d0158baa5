import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StrataError } from "../errors.js";
import type { Store } from "../store/store.js";
import { addDecimals, numberToPlain } from "../util/decimal.js";
import { type MaterializationPlan, planMaterialization } from "./materialization-plan.js";
import { launchRun, type RunHooks } from "./run-launch.js";
import {
  catalogOf,
  type PreparedProject,
  prepareProject,
  projectStorageRoot,
  type RunnableProject,
} from "./run-project.js";
import type { RunResult } from "./run-result.js";
import { RunValues } from "./run-values.js";

// The one place that starts and resumes runs: the CLI, workers, the daemon and the UI call
// `materialize` and `resumeRun` and add only their own I/O (progress lines, a job loop, a tick,
// an HTTP response).

/** What the run façade shares between {@link materialize} and {@link resumeRun}. */
interface RunSettings extends RunHooks {
  /** `defineProject(...)`'s value, or a project `loadProject` loaded from its file. */
  readonly project: RunnableProject;
  /**
   * Where Arrow values go. Default: a new temporary directory when the call opens its own
   * in-memory store; else `<project dir>/.strata/storage` (the project file's directory for a
   * loaded project, the working directory otherwise), where the CLI keeps them.
   */
  readonly storageDir?: string;
  /** Where endpoints' API keys and `OPENAI_BASE_URL` are read (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Steps built at once (default 4). */
  readonly concurrency?: number;
}

/** What {@link materialize} takes. */
export interface MaterializeOptions extends RunSettings {
  /** The asset selection (Dagster's syntax: `"*"`, `"raw/documents+"`, `"group:nlp"`); default `"*"`. */
  readonly select?: string;
  /** The partitions to build of the selected partitioned assets. */
  readonly partitions?: ReadonlyArray<string>;
  /** A contiguous range of time partitions, `"2026-01-01..2026-01-07"`. */
  readonly partitionRange?: string;
  /** Every partition that exists now. */
  readonly allPartitions?: boolean;
  /** A plan already made for this project (`planMaterialization`); replaces the selection. */
  readonly plan?: MaterializationPlan;
  /**
   * The database to record the run in. Default: a new, migrated, in-memory embedded database,
   * closed when the call returns (the values stay readable: they are files).
   */
  readonly store?: Store;
  /** Stop dispatching inference calls once this much (USD) is spent; default no cap. */
  readonly maxCostUsd?: string | number | null;
  /** Call the endpoints even for requests the ledger has answered (by other runs). */
  readonly noCache?: boolean;
}

/** What {@link resumeRun} takes. */
export interface ResumeRunOptions extends RunSettings {
  /** The database that recorded the run. */
  readonly store: Store;
  /** The run to resume: its id or a unique prefix. */
  readonly run: string;
  /** A new cap for the run and all its resumes together; default the run's own cap. */
  readonly maxCostUsd?: string | number;
  /** Told what the caller should know before the resume starts (calls lost in flight). */
  readonly onWarning?: (message: string) => void;
}

/** A finished run: its status and each step's outcome, its total cost, and its values. */
export interface MaterializeResult extends RunResult {
  /** What the run spent on inference, exact decimal USD. */
  readonly costUsd: string;
  /** The values the run's steps stored, read on demand. */
  readonly values: RunValues;
}

/**
 * Plans the selection and runs it: each selected asset (partition) is built once its upstream
 * steps succeeded, its value stored as an Arrow file, its inference fanned out to the project's
 * endpoints with every call's tokens and cost on the ledger. A failing step is reported with its
 * error and its downstream steps are skipped; the call rejects only for a bad request (an
 * invalid project, a bad selection or partition: a {@link StrataError} with a stable `code`), a
 * store that cannot record the run, or partitions another run is building (`partition_locked`).
 *
 * @example
 * import { asset, defineProject, materialize } from "strata";
 *
 * const documents = asset({ key: "documents", compute: async () => [{ id: "d1", text: "hi" }] });
 * const result = await materialize({ project: defineProject({ assets: [documents] }) });
 * result.status;                           // "succeeded"
 * result.steps[0]?.rows;                   // 1
 * await result.values.get("documents");    // [{ id: "d1", text: "hi" }]
 */
export async function materialize(options: MaterializeOptions): Promise<MaterializeResult> {
  const env = options.env ?? process.env;
  const project = prepareProject(options.project, env);
  const plan =
    options.plan ??
    planMaterialization(project.graph, {
      selection: options.select ?? "*",
      ...(options.partitions !== undefined ? { partitions: options.partitions } : {}),
      ...(options.partitionRange !== undefined ? { partitionRange: options.partitionRange } : {}),
      ...(options.allPartitions === true ? { allPartitions: true } : {}),
    });
  const maxCostUsd = usdOption(options.maxCostUsd ?? null);
  const concurrency = concurrencyOption(options.concurrency);
  return withStore(options.store, async (store, ownStore) => {
    await syncProjectCatalog(store, project);
    const storageRoot = await storageRootFor(options.storageDir, project, env, ownStore);
    const result = await launchRun({
      ...hooksOf(options),
      project,
      store,
      plan,
      storageRoot,
      env,
      maxCostUsd,
      concurrency,
      noCache: options.noCache === true,
    });
    return withValues(result, storageRoot);
  });
}

/**
 * Finishes a failed, canceled, killed or budget-stopped run: runs the steps of its plan that
 * have not succeeded, as a new run that resumes it, paying only for documents the ledger has
 * not answered. The cap covers the run and all its resumes together; its options (`noCache`,
 * concurrency) are the run's own unless given.
 *
 * @throws StrataError `run_not_found`, `run_not_resumable` (running, succeeded, resumed
 *   already, or planned steps this project lacks), `bad_usage` (a cap below what was spent).
 *
 * @example
 * const first = await materialize({ project, store, maxCostUsd: 0.01 });
 * if (first.status === "budget_exceeded") {
 *   const rest = await resumeRun({ project, store, run: first.runId, maxCostUsd: 0.05 });
 * }
 */
export async function resumeRun(options: ResumeRunOptions): Promise<MaterializeResult> {
  const env = options.env ?? process.env;
  const project = prepareProject(options.project, env);
  const maxCostUsd = options.maxCostUsd === undefined ? undefined : usdOption(options.maxCostUsd);
  const concurrency = concurrencyOption(options.concurrency);
  const { store } = options;
  await syncProjectCatalog(store, project);
  const [{ planResume }, { callsLostInFlight }] = await Promise.all([
    import("./resume-plan.js"),
    import("../store/ledger-queries.js"),
  ]);
  const resume = await planResume({
    db: store.db,
    project,
    run: options.run,
    ...(maxCostUsd !== undefined && maxCostUsd !== null ? { maxCostUsd } : {}),
  });
  const lost = await callsLostInFlight(store.db, resume.run.id);
  if (lost > 0) {
    options.onWarning?.(
      `run ${resume.run.id} had ${lost} call(s) in flight when it stopped; the endpoint may have billed them without strata recording the answers`,
    );
  }
  const storageRoot = await storageRootFor(options.storageDir, project, env, false);
  const result = await launchRun({
    ...hooksOf(options),
    project,
    store,
    plan: resume.plan,
    storageRoot,
    env,
    maxCostUsd: resume.maxCostUsd,
    concurrency: concurrency ?? resume.concurrency,
    noCache: resume.noCache,
    resumes: { chain: resume.chain, spentUsd: resume.spentUsd },
  });
  return withValues(result, storageRoot);
}

function hooksOf(options: RunHooks): RunHooks {
  return {
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    ...(options.onEvent !== undefined ? { onEvent: options.onEvent } : {}),
    ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
    ...(options.log !== undefined ? { log: options.log } : {}),
  };
}

/** Runs `body` with the given store, or with a new in-memory one that it closes after. */
async function withStore<T>(
  given: Store | undefined,
  body: (store: Store, ownStore: boolean) => Promise<T>,
): Promise<T> {
  if (given !== undefined) return body(given, false);
  const { openMigratedMemoryStore } = await import("../store/memory-store.js");
  const store = await openMigratedMemoryStore();
  try {
    return await body(store, true);
  } finally {
    await store.close();
  }
}

/** Writes the declared assets to the catalog tables (nothing when they did not change). */
async function syncProjectCatalog(store: Store, project: PreparedProject): Promise<void> {
  const { syncCatalog } = await import("../store/catalog.js");
  await syncCatalog(store.db, catalogOf(project.definition));
}

async function storageRootFor(
  storageDir: string | undefined,
  project: PreparedProject,
  env: NodeJS.ProcessEnv,
  ownStore: boolean,
): Promise<string> {
  if (storageDir !== undefined) return storageDir;
  // an in-memory database is gone after the call: its values go where nothing else looks
  if (ownStore) return mkdtemp(join(tmpdir(), "strata-values-"));
  return projectStorageRoot(project, env);
}

function withValues(result: RunResult, storageRoot: string): MaterializeResult {
  return {
    ...result,
    costUsd: addDecimals(result.steps.map((s) => s.costUsd)),
    values: new RunValues(result.steps, storageRoot),
  };
}

/** A cap in USD as an exact decimal string. */
function usdOption(value: string | number | null): string | null {
  if (value === null) return null;
  const text =
    typeof value === "number" && Number.isFinite(value) && value >= 0
      ? numberToPlain(value)
      : typeof value === "string"
        ? value.trim()
        : "";
  if (!/^\d+(\.\d+)?$/.test(text)) {
    throw new StrataError(
      "bad_usage",
      `maxCostUsd must be a non-negative amount of USD such as 5 or "0.25", not ${JSON.stringify(value)}`,
    );
  }
  return text;
}

function concurrencyOption(value: number | undefined): number | undefined {
  if (value === undefined || (Number.isSafeInteger(value) && value >= 1)) return value;
  throw new StrataError("bad_usage", `concurrency must be a positive integer, not ${value}`);
}
