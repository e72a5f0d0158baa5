import type { MaterializationPlan } from "../materialize/materialization-plan.js";
import type { RunResult, StepResult } from "../materialize/materialize.js";
import { allowsRelaxedCommits, type Store } from "../store/store.js";
import { addDecimals } from "../util/decimal.js";
import { newId } from "../util/ids.js";
import { formatUsd } from "../util/usd.js";
import { onCancelSignals } from "./cancel-signals.js";
import type { CliContext } from "./cli-context.js";
import { writeLine } from "./cli-io.js";
import type { LoadedProject } from "./project-loader.js";
import { formatDuration, RunProgress } from "./run-progress.js";
import { outputWidth, renderTable } from "./text-table.js";

/** How `materialize` and `runs resume` run a plan. */
export interface RunPlanOptions {
  /** The cap of the run and of every run it resumes, together. */
  readonly maxCostUsd: string | null;
  readonly concurrency: number | undefined;
  readonly noCache: boolean;
  readonly json: boolean;
  /** For a resume: the runs it resumes, newest first, and what they spent (exact decimal). */
  readonly resumes?: { readonly chain: ReadonlyArray<string>; readonly spentUsd: string };
}

/**
 * Runs a plan the way the CLI does: live progress on stderr, Ctrl-C to cancel, inference through
 * the project's endpoints with the run's budget, and the summary (or JSON) on stdout.
 */
export async function runPlan(
  ctx: CliContext,
  project: LoadedProject,
  store: Store,
  plan: MaterializationPlan,
  options: RunPlanOptions,
): Promise<RunResult> {
  // The run's machinery (the inference client, Arrow) loads when a plan runs, not with every
  // command that imports this module (`strata runs` lists runs).
  const [{ stepInference }, { InferenceRuntime }, { materialize, storageRootOf }] =
    await Promise.all([
      import("../inference/fan-out.js"),
      import("../inference/inference-runtime.js"),
      import("../materialize/materialize.js"),
    ]);
  const progress = new RunProgress(ctx.io.stderr, { quiet: options.json });
  const cancel = onCancelSignals((message, exiting) => {
    // through the progress, so the live lines are cleared rather than torn
    if (exiting) progress.done();
    progress.log(message);
  });
  const runId = newId();
  const chain = options.resumes?.chain ?? [];
  const runtime = new InferenceRuntime({
    project: project.definition,
    db: store.db,
    env: ctx.io.env,
    maxCostUsd: options.maxCostUsd,
    spentBeforeUsd: options.resumes?.spentUsd ?? "0",
    noCache: options.noCache,
    // --no-cache never re-pays what this run, or a run it resumes, has answered
    reuseRuns: [runId, ...chain],
    ledger: { relaxedDispatchCommit: allowsRelaxedCommits(store) },
    onProgress: (p) => progress.onInference(p),
  });
  let result: RunResult;
  try {
    result = await materialize({
      project,
      store,
      plan,
      runId,
      storageRoot: storageRootOf(project.dir),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      signal: cancel.signal,
      maxCostUsd: options.maxCostUsd,
      resumedFrom: chain[0] ?? null,
      runOptions: {
        ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
        ...(options.noCache ? { noCache: true } : {}),
      },
      onEvent: (event) => progress.onEvent(event),
      inference: (step) => stepInference(runtime, step),
      flushInference: () => runtime.ledger.flush(),
      log: (assetKey, partitionKey, level, message) => {
        const where = partitionKey === null ? assetKey : `${assetKey}[${partitionKey}]`;
        progress.log(`[${where}]${level === "info" ? "" : ` ${level}:`} ${message}`);
      },
    });
  } finally {
    await runtime.close().catch(() => {});
    progress.done();
    cancel.dispose();
  }
  printResult(ctx, result, options.json);
  return result;
}

function printResult(ctx: CliContext, result: RunResult, json: boolean): void {
  const costUsd = addDecimals(result.steps.map((s) => s.costUsd));
  if (json) {
    writeLine(
      ctx.io.stdout,
      JSON.stringify({
        runId: result.runId,
        status: result.status,
        costUsd,
        error: result.error,
        assets: result.steps.map((s) => ({
          key: s.assetKey,
          partition: s.partitionKey,
          status: s.status,
          rows: s.rows,
          promptTokens: s.promptTokens,
          cachedTokens: s.cachedTokens,
          completionTokens: s.completionTokens,
          costUsd: s.costUsd,
          durationMs: s.durationMs,
          error: s.error,
        })),
      }),
    );
    printResumeHint(ctx, result);
    return;
  }
  const sum = (pick: (s: StepResult) => number) =>
    String(result.steps.reduce((t, s) => t + pick(s), 0));
  writeLine(
    ctx.io.stdout,
    renderTable({
      columns: [
        { header: "step", fit: "middle" },
        { header: "status" },
        { header: "rows", align: "right" },
        { header: "input", align: "right" },
        { header: "cached", align: "right" },
        { header: "output", align: "right" },
        { header: "cost", align: "right" },
        { header: "time", align: "right" },
      ],
      rows: result.steps.map((s) => [
        s.partitionKey === null ? s.assetKey : `${s.assetKey}[${s.partitionKey}]`,
        s.status,
        s.rows === null ? "" : String(s.rows),
        String(s.promptTokens),
        String(s.cachedTokens),
        String(s.completionTokens),
        formatUsd(s.costUsd),
        s.durationMs === null ? "" : formatDuration(s.durationMs),
      ]),
      footer: [
        [
          "total",
          "",
          "",
          sum((s) => s.promptTokens),
          sum((s) => s.cachedTokens),
          sum((s) => s.completionTokens),
          formatUsd(costUsd),
          "",
        ],
      ],
      maxWidth: outputWidth(ctx.io.stdout),
    }),
  );
  writeLine(ctx.io.stdout, `run ${result.runId} ${result.status}; cost ${formatUsd(costUsd)}`);
  if (result.error !== null) writeLine(ctx.io.stderr, `strata: ${result.error}`);
  printResumeHint(ctx, result);
}

/** After a run that did not succeed: how to finish it (unless its error says so already). */
function printResumeHint(ctx: CliContext, result: RunResult): void {
  if (result.status === "succeeded" || result.error?.includes("strata runs resume")) return;
  writeLine(
    ctx.io.stderr,
    `strata: finish it later without paying again for answered documents: strata runs resume ${result.runId}`,
  );
}
