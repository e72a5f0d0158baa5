import type { MaterializationPlan } from "../materialize/materialization-plan.js";
import type { MaterializeResult } from "../materialize/run-facade.js";
import type { RunHooks } from "../materialize/run-launch.js";
import type { RunResult, StepResult } from "../materialize/run-result.js";
import type { Store } from "../store/store.js";
import { formatUsd } from "../util/usd.js";
import { onCancelSignals } from "./cancel-signals.js";
import type { CliContext } from "./cli-context.js";
import { writeLine } from "./cli-io.js";
import type { LoadedProject } from "./project-loader.js";
import { formatDuration, RunProgress } from "./run-progress.js";
import { outputWidth, renderTable } from "./text-table.js";

/** How `materialize` runs a plan. */
export interface RunPlanOptions {
  /** The cap of the run (exact decimal), or null. */
  readonly maxCostUsd: string | null;
  readonly concurrency: number | undefined;
  readonly noCache: boolean;
  readonly json: boolean;
}

/** How `runs resume` resumes a run. */
export interface ResumePlanOptions {
  /** `--max-cost`: a new cap for the run and its resumes together. */
  readonly maxCostUsd: string | undefined;
  readonly concurrency: number | undefined;
  readonly json: boolean;
}

/**
 * Runs a plan through the run façade the way the CLI does: live progress on stderr, Ctrl-C to
 * cancel, and the summary (or JSON) on stdout.
 */
export async function runPlan(
  ctx: CliContext,
  project: LoadedProject,
  store: Store,
  plan: MaterializationPlan,
  options: RunPlanOptions,
): Promise<RunResult> {
  // The run's machinery loads when a plan runs, not with every command that imports this
  // module (`strata runs` lists runs).
  const { materialize } = await import("../materialize/run-facade.js");
  return withRunOutput(ctx, options.json, (hooks) =>
    materialize({
      ...hooks,
      project,
      store,
      plan,
      env: ctx.io.env,
      maxCostUsd: options.maxCostUsd,
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      noCache: options.noCache,
    }),
  );
}

/** Resumes run `run` through the run façade, with the CLI's progress, Ctrl-C and summary. */
export async function resumePlan(
  ctx: CliContext,
  project: LoadedProject,
  store: Store,
  run: string,
  options: ResumePlanOptions,
): Promise<RunResult> {
  const { resumeRun } = await import("../materialize/run-facade.js");
  return withRunOutput(ctx, options.json, (hooks) =>
    resumeRun({
      ...hooks,
      project,
      store,
      run,
      env: ctx.io.env,
      ...(options.maxCostUsd !== undefined ? { maxCostUsd: options.maxCostUsd } : {}),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      onWarning: (message) => writeLine(ctx.io.stderr, `strata: ${message}`),
    }),
  );
}

/** Wires a run's hooks to the CLI's progress and Ctrl-C, then prints its summary. */
async function withRunOutput(
  ctx: CliContext,
  json: boolean,
  start: (hooks: RunHooks) => Promise<MaterializeResult>,
): Promise<RunResult> {
  const progress = new RunProgress(ctx.io.stderr, { quiet: json });
  const cancel = onCancelSignals((message, exiting) => {
    // through the progress, so the live lines are cleared rather than torn
    if (exiting) progress.done();
    progress.log(message);
  });
  let result: MaterializeResult;
  try {
    result = await start({
      signal: cancel.signal,
      onEvent: (event) => progress.onEvent(event),
      onProgress: (p) => progress.onInference(p),
      log: (assetKey, partitionKey, level, message) => {
        const where = partitionKey === null ? assetKey : `${assetKey}[${partitionKey}]`;
        progress.log(`[${where}]${level === "info" ? "" : ` ${level}:`} ${message}`);
      },
    });
  } finally {
    progress.done();
    cancel.dispose();
  }
  printResult(ctx, result, json);
  return result;
}

function printResult(ctx: CliContext, result: MaterializeResult, json: boolean): void {
  const { costUsd } = result;
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
