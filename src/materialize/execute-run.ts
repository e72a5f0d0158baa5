import type { ProjectDefinition } from "../assets/project-definition.js";
import { ComputeError, StrataError } from "../errors.js";
import type { AssetGraph } from "../lineage/asset-graph.js";
import { totalMaterializationCost } from "../store/ledger-queries.js";
import { recordRunEnd, recordRunStart } from "../store/run-records.js";
import { StepRecordError, StepRecorder } from "../store/step-recorder.js";
import { allowsRelaxedCommits, type Store } from "../store/store.js";
import { errorMessage } from "../util/error-message.js";
import { newId } from "../util/ids.js";
import { redactSecrets } from "../util/redactor.js";
import { writeArrowFile } from "../values/arrow-file.js";
import { normalizeComputeResult } from "../values/compute-result.js";
import { storageKey, storedValuePath } from "../values/storage-path.js";
import { removeStaleTempFiles, stagingDir } from "../values/temp-file.js";
import { dataVersion } from "./data-version.js";
import { type Executor, InProcessExecutor, type StepOutcome } from "./executor.js";
import type { MaterializationPlan, PlanStep } from "./materialization-plan.js";
import {
  type InferenceStep,
  type LogSink,
  StepContext,
  type StepInference,
} from "./run-context.js";
import {
  type RunEvent,
  type RunResult,
  type StepResult,
  summarizeFailure,
  ZERO_COST,
} from "./run-result.js";
import { StepInputs } from "./step-inputs.js";

type ProjectRef = { readonly definition: ProjectDefinition; readonly graph: AssetGraph };

/** Creates the inference runtime of one step (see the inference layer). */
export type InferenceFactory = (step: InferenceStep) => StepInference;

/** What {@link executeRun} needs. */
export interface ExecuteRunOptions {
  /** `name` and `file` are recorded on the run: a resume names the project that started it. */
  readonly project: ProjectRef & { readonly name?: string; readonly file?: string };
  readonly store: Store;
  readonly plan: MaterializationPlan;
  /** Where Arrow files go: `<project dir>/.strata/storage`. */
  readonly storageRoot: string;
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly cancelGraceMs?: number;
  readonly executor?: Executor;
  readonly log?: LogSink;
  readonly onEvent?: (event: RunEvent) => void;
  readonly inference?: InferenceFactory;
  /** Writes the inference's buffered ledger rows: called before stopped steps' costs are read. */
  readonly flushInference?: () => Promise<void>;
  /** Recorded on the run row, so `strata runs resume` can replay the request. */
  readonly runOptions?: Readonly<Record<string, unknown>>;
  readonly maxCostUsd?: string | null;
  readonly resumedFrom?: string | null;
  readonly runId?: string;
}

/**
 * Runs a plan: records the run and its steps, builds each step when its upstream steps
 * succeeded, stores values as Arrow files and records each materialization with what it read.
 * A failing step is recorded with its error; its downstream steps are skipped, other branches
 * finish, and the run ends `failed`. Aborting `signal` ends the run `canceled` with everything
 * that finished kept.
 *
 * This is the executor loop only: it takes no partition locks and builds no inference runtime.
 * Runs start through the run façade (`materialize`, `resumeRun` in run-facade.ts), which does.
 *
 * @example
 * const result = await executeRun({ project, store, plan, storageRoot: storageRootOf(dir) });
 */
export async function executeRun(options: ExecuteRunOptions): Promise<RunResult> {
  const { store, plan, project } = options;
  const db = store.db;
  const runId = options.runId ?? newId();
  const materializationIds = new Map(plan.steps.map((s) => [s.id, newId()]));
  await recordRunStart(
    db,
    {
      id: runId,
      selection: plan.selection,
      partitions: plan.partitionKeys,
      options: options.runOptions ?? {},
      maxCostUsd: options.maxCostUsd ?? null,
      resumedFrom: options.resumedFrom ?? null,
      project:
        project.name === undefined ? null : { name: project.name, file: project.file ?? null },
    },
    plan.steps.map((s) => ({
      id: materializationIds.get(s.id)!,
      assetKey: s.assetKey,
      partitionKey: s.partitionKey,
      codeVersion: s.codeVersion,
      depKeys: project.graph.get(s.assetKey).deps.map((d) => d.key),
    })),
  );
  options.onEvent?.({ type: "run_started", runId, plan });
  // What writes killed mid-way (SIGKILL) left goes, in the background: one directory read.
  const staging = stagingDir(options.storageRoot);
  const swept = removeStaleTempFiles(staging).catch(() => []);

  // Step states are group-committed: a step hands its value on without waiting for the
  // database, and the run row is only written after every state is.
  const recorder = new StepRecorder(db, { relaxedCommit: allowsRelaxedCommits(store) });
  const inputs = new StepInputs(db, plan.steps, options.storageRoot, () => recorder.flush());
  const results = new Map<string, StepResult>();
  // Steps the executor gave up on (canceled past the grace period): they must write nothing more.
  const closed = new Set<string>();
  // Steps that called ctx.infer: what they spent is on the ledger, however they ended.
  const inferred = new Set<string>();
  let budgetExceeded = false;
  const log: LogSink = options.log ?? (() => {});

  const runStep = async (step: PlanStep, signal: AbortSignal): Promise<StepOutcome> => {
    const materializationId = materializationIds.get(step.id)!;
    // The database is gone: build nothing more that could not be recorded.
    if (recorder.failure !== null) return { status: "failed", error: recorder.failure };
    const startedAt = new Date();
    options.onEvent?.({ type: "step_started", step });
    recorder.started(materializationId, startedAt);
    const asset = project.graph.get(step.assetKey);
    let usedInference = false;
    const inference = options.inference?.({
      runId,
      stepId: step.id,
      materializationId,
      assetKey: step.assetKey,
      partitionKey: step.partitionKey,
      signal,
    });
    const ctx = new StepContext({
      runId,
      assetKey: step.assetKey,
      partitionKey: step.partitionKey,
      signal,
      log,
      inference:
        inference === undefined
          ? undefined
          : {
              infer: (items, spec) => {
                usedInference = true;
                inferred.add(step.id);
                return inference.infer(items, spec);
              },
            },
    });
    // The step's token and cost totals, summed exactly from its ledger rows.
    const costs = async () =>
      usedInference ? await totalMaterializationCost(db, materializationId) : ZERO_COST;
    const finishWith = async (
      result: Omit<StepResult, "id" | "materializationId" | "assetKey" | "partitionKey">,
    ) => {
      const full: StepResult = {
        id: step.id,
        materializationId,
        assetKey: step.assetKey,
        partitionKey: step.partitionKey,
        ...result,
      };
      results.set(step.id, full);
      options.onEvent?.({ type: "step_finished", step, result: full });
    };
    try {
      const resolved = await inputs.resolve(step);
      let value: unknown;
      try {
        value = await asset.compute(ctx, resolved.values);
      } catch (error) {
        throw error instanceof StrataError && error.code !== "compute_failed"
          ? error
          : new ComputeError(step.assetKey, step.partitionKey, error);
      }
      const table = normalizeComputeResult(value, step.assetKey);
      // A step that ignored the cancel and ended after the run was recorded stays canceled.
      if (closed.has(step.id))
        return { status: "canceled", reason: "the step ended after the run" };
      // recorded relative to the storage root, so any machine that mounts it finds the value
      const key = storageKey(step.assetKey, step.partitionKey, materializationId);
      const { sha256 } = await writeArrowFile(storedValuePath(options.storageRoot, key), table, {
        tempDir: staging,
      });
      const version = dataVersion({
        codeVersion: step.codeVersion,
        materializationId,
        inputDataVersions: resolved.dataVersions,
      });
      if (closed.has(step.id))
        return { status: "canceled", reason: "the step ended after the run" };
      recorder.succeeded(
        materializationId,
        {
          dataVersion: version,
          rowCount: table.numRows,
          storagePath: key,
          storageSha256: sha256,
          metadata: ctx.attachedMetadata,
          inputIds: resolved.materializationIds,
          startedAt,
        },
        new Date(),
      );
      inputs.produced(step, materializationId, version, table);
      await finishWith({
        status: "succeeded",
        rows: table.numRows,
        durationMs: Date.now() - startedAt.getTime(),
        error: null,
        ...(await costs()),
      });
      return { status: "succeeded" };
    } catch (error) {
      if (closed.has(step.id))
        return { status: "canceled", reason: "the step ended after the run" };
      if (error instanceof StrataError && error.code === "budget_exceeded") budgetExceeded = true;
      const canceled = signal.aborted && !budgetExceeded;
      // An endpoint or a compute may quote a secret (an echoed API key) in what it threw.
      const thrown = redactSecrets(errorMessage(error));
      const message = canceled
        ? `the run was canceled while this step was running (${thrown})`
        : thrown;
      recorder.ended(materializationId, canceled ? "canceled" : "failed", message, new Date(), {
        ...ctx.attachedMetadata,
        errorStack: error instanceof Error ? (error.stack ?? null) : null,
      });
      await finishWith({
        status: canceled ? "canceled" : "failed",
        rows: null,
        durationMs: Date.now() - startedAt.getTime(),
        error: message,
        ...(await costs().catch(() => ZERO_COST)),
      });
      return canceled ? { status: "canceled", reason: message } : { status: "failed", error };
    }
  };

  const executor = options.executor ?? new InProcessExecutor();
  const outcomes = await executor.execute(plan, runStep, {
    concurrency: options.concurrency,
    signal: options.signal,
    cancelGraceMs: options.cancelGraceMs,
  });
  for (const step of plan.steps) if (!results.has(step.id)) closed.add(step.id);
  const abandoned = plan.steps.some((s) => inferred.has(s.id) && closed.has(s.id));
  if (abandoned) await options.flushInference?.().catch(() => {});

  // Steps that never ran (skipped, canceled), or whose bookkeeping itself failed, get their
  // rows and results now.
  for (const step of plan.steps) {
    const outcome = outcomes.get(step.id)!;
    const known = results.get(step.id);
    if (known !== undefined && (known.status === "succeeded" || outcome.status !== "canceled")) {
      continue;
    }
    inputs.release(step);
    const materializationId = materializationIds.get(step.id)!;
    const status = outcome.status === "succeeded" ? "failed" : outcome.status;
    const reason =
      outcome.status === "failed"
        ? redactSecrets(errorMessage(outcome.error))
        : outcome.status === "succeeded"
          ? "the step ended without a result"
          : outcome.reason;
    recorder.ended(materializationId, status, reason, new Date());
    // A step stopped while running keeps the tokens and cost it spent (its own result's, else
    // the ledger's when the executor gave up on it before it could report them).
    const spent =
      known ??
      (inferred.has(step.id)
        ? await totalMaterializationCost(db, materializationId).catch(() => ZERO_COST)
        : ZERO_COST);
    results.set(step.id, {
      id: step.id,
      materializationId,
      assetKey: step.assetKey,
      partitionKey: step.partitionKey,
      status,
      rows: null,
      durationMs: known?.durationMs ?? null,
      error: reason,
      promptTokens: spent.promptTokens,
      cachedTokens: spent.cachedTokens,
      completionTokens: spent.completionTokens,
      costUsd: spent.costUsd,
    });
  }

  // Every step state is committed before the run's end is; a state that could not be written
  // makes its step (and the run) failed, whatever it computed.
  const unrecorded = await recorder.flush().then(
    () => null,
    (error: unknown) => error,
  );
  if (unrecorded instanceof StepRecordError) {
    const lost = new Set(unrecorded.materializationIds);
    for (const [id, result] of results) {
      if (lost.has(result.materializationId) && result.status === "succeeded") {
        results.set(id, { ...result, status: "failed", error: unrecorded.message });
      }
    }
  }
  const steps = plan.steps.map((s) => results.get(s.id)!);
  const status: RunResult["status"] =
    options.signal?.aborted && steps.some((s) => s.status !== "succeeded")
      ? "canceled"
      : budgetExceeded
        ? "budget_exceeded"
        : steps.every((s) => s.status === "succeeded")
          ? "succeeded"
          : "failed";
  const error = status === "succeeded" ? null : summarizeFailure(steps, status);
  await swept;
  await recordRunEnd(db, runId, status, error);
  return { runId, status, error, steps };
}
