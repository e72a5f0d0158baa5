import type { InferenceProgress } from "../inference/inference-runtime.js";
import { allowsRelaxedCommits, type Store } from "../store/store.js";
import { newId } from "../util/ids.js";
import type { ExecuteRunOptions } from "./execute-run.js";
import type { MaterializationPlan } from "./materialization-plan.js";
import type { LogSink } from "./run-context.js";
import type { RunEvent, RunResult } from "./run-result.js";

/** What a caller of the façade hears while a run goes: events, inference progress, logs. */
export interface RunHooks {
  /** Cancels the run: it ends `canceled`, with everything that finished kept. */
  readonly signal?: AbortSignal;
  /** Run and step events: `run_started`, `step_started`, `step_finished`. */
  readonly onEvent?: (event: RunEvent) => void;
  /** Inference progress of a running step (documents done, tokens, cost so far). */
  readonly onProgress?: (progress: InferenceProgress) => void;
  /** Where `ctx.log` lines go (default: nowhere). */
  readonly log?: LogSink;
}

/** A run, ready to start: everything the façade resolved. */
export interface LaunchRequest extends RunHooks {
  readonly project: ExecuteRunOptions["project"];
  readonly store: Store;
  readonly plan: MaterializationPlan;
  readonly storageRoot: string;
  /** Where endpoints' API keys (and `OPENAI_BASE_URL`) are read. */
  readonly env: NodeJS.ProcessEnv;
  /** The cap of the run and of every run it resumes, together (exact decimal), or null. */
  readonly maxCostUsd: string | null;
  readonly concurrency: number | undefined;
  readonly noCache: boolean;
  /** For a resume: the runs it resumes, newest first, and what they spent (exact decimal). */
  readonly resumes?: { readonly chain: ReadonlyArray<string>; readonly spentUsd: string };
}

/**
 * Starts a planned run: the run's inference runtime (the project's endpoints, the budget with
 * what resumed runs spent, `noCache` reusing the answers of the run's own chain, dispatch
 * commits relaxed where the backend allows), the partition locks of its steps, then the
 * executor; the runtime is closed whatever happens.
 *
 * @example
 * const result = await launchRun({ project, store, plan, storageRoot, env: process.env,
 *   maxCostUsd: null, concurrency: undefined, noCache: false });
 */
export async function launchRun(request: LaunchRequest): Promise<RunResult> {
  // The run's machinery (the inference client) loads when a run starts, not with every module
  // that imports the façade (a project file importing "strata").
  const [{ stepInference }, { InferenceRuntime }, { executeRun }, { withPlanLocks }] =
    await Promise.all([
      import("../inference/fan-out.js"),
      import("../inference/inference-runtime.js"),
      import("./execute-run.js"),
      import("./plan-locks.js"),
    ]);
  const { store, plan } = request;
  const runId = newId();
  const chain = request.resumes?.chain ?? [];
  const runtime = new InferenceRuntime({
    project: request.project.definition,
    db: store.db,
    env: request.env,
    maxCostUsd: request.maxCostUsd,
    spentBeforeUsd: request.resumes?.spentUsd ?? "0",
    noCache: request.noCache,
    // noCache never re-pays what this run, or a run it resumes, has answered
    reuseRuns: [runId, ...chain],
    ledger: { relaxedDispatchCommit: allowsRelaxedCommits(store) },
    ...(request.onProgress !== undefined ? { onProgress: request.onProgress } : {}),
  });
  const { concurrency } = request;
  try {
    return await withPlanLocks(store, plan, () =>
      executeRun({
        project: request.project,
        store,
        plan,
        runId,
        storageRoot: request.storageRoot,
        ...(concurrency !== undefined ? { concurrency } : {}),
        ...(request.signal !== undefined ? { signal: request.signal } : {}),
        maxCostUsd: request.maxCostUsd,
        resumedFrom: chain[0] ?? null,
        // recorded on the run, so that a resume replays the request
        runOptions: {
          ...(concurrency !== undefined ? { concurrency } : {}),
          ...(request.noCache ? { noCache: true } : {}),
        },
        ...(request.onEvent !== undefined ? { onEvent: request.onEvent } : {}),
        ...(request.log !== undefined ? { log: request.log } : {}),
        inference: (step) => stepInference(runtime, step),
        flushInference: () => runtime.ledger.flush(),
      }),
    );
  } finally {
    await runtime.close().catch(() => {});
  }
}
