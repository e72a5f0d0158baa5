import Table from "cli-table3";
import type { MaterializationPlan } from "../materialize/materialization-plan.js";
import type { RunResult } from "../materialize/materialize.js";
import { allowsRelaxedCommits, type Store } from "../store/store.js";
import { addDecimals } from "../util/decimal.js";
import { onCancelSignals } from "./cancel-signals.js";
import type { CliContext } from "./cli-context.js";
import { writeLine } from "./cli-io.js";
import type { LoadedProject } from "./project-loader.js";
import { formatDuration, RunProgress } from "./run-progress.js";

/** How `materialize` and `runs resume` run a plan. */
export interface RunPlanOptions {
  readonly maxCostUsd: string | null;
  readonly concurrency: number | undefined;
  readonly noCache: boolean;
  readonly json: boolean;
  readonly resumedFrom: string | null;
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
  const cancel = onCancelSignals(ctx.io.stderr);
  const runtime = new InferenceRuntime({
    project: project.definition,
    db: store.db,
    env: ctx.io.env,
    maxCostUsd: options.maxCostUsd,
    noCache: options.noCache,
    ledger: { relaxedDispatchCommit: allowsRelaxedCommits(store) },
    onProgress: (p) => progress.onInference(p),
  });
  let result: RunResult;
  try {
    result = await materialize({
      project,
      store,
      plan,
      storageRoot: storageRootOf(project.dir),
      ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
      signal: cancel.signal,
      maxCostUsd: options.maxCostUsd,
      resumedFrom: options.resumedFrom,
      runOptions: {
        ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
        ...(options.noCache ? { noCache: true } : {}),
      },
      onEvent: (event) => progress.onEvent(event),
      inference: (step) => stepInference(runtime, step),
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
    return;
  }
  const table = new Table({
    head: [
      "asset",
      "partition",
      "status",
      "rows",
      "tokens (prompt/cached/completion)",
      "cost USD",
      "time",
    ],
    style: { head: [], border: [] },
  });
  for (const s of result.steps) {
    table.push([
      s.assetKey,
      s.partitionKey ?? "",
      s.status,
      s.rows === null ? "" : String(s.rows),
      `${s.promptTokens}/${s.cachedTokens}/${s.completionTokens}`,
      s.costUsd,
      s.durationMs === null ? "" : formatDuration(s.durationMs),
    ]);
  }
  writeLine(ctx.io.stdout, table.toString());
  writeLine(ctx.io.stdout, `run ${result.runId} ${result.status}; cost $${costUsd}`);
  if (result.error !== null) writeLine(ctx.io.stderr, `strata: ${result.error}`);
}
