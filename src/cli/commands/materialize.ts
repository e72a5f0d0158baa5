import Table from "cli-table3";
import type { Command } from "commander";
import { addDecimals } from "../../materialize/decimal.js";
import { stepInference } from "../../materialize/fan-out.js";
import { InferenceRuntime } from "../../materialize/inference-runtime.js";
import { planMaterialization } from "../../materialize/materialization-plan.js";
import { materialize, type RunResult, storageRootOf } from "../../materialize/materialize.js";
import { onCancelSignals } from "../cancel-signals.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { EXIT_FAILED, EXIT_OK } from "../exit-codes.js";
import { collect, parsePositiveInt, parseUsd } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { formatDuration, RunProgress } from "../run-progress.js";

interface MaterializeCliOptions {
  select: string;
  partition?: string[];
  partitionRange?: string;
  maxCost?: string;
  concurrency?: string;
  dryRun?: boolean;
  json?: boolean;
  cache: boolean;
}

/** `strata materialize --select SEL [--partition KEY]... [--dry-run] [--json] ...` */
export function registerMaterializeCommand(program: Command, run: CommandRunner): void {
  program
    .command("materialize")
    .description("plan and build the selected assets")
    .requiredOption(
      "--select <selection>",
      "asset selection, e.g. '*', 'raw/documents+', 'group:nlp'",
    )
    .option("--partition <key>", "a partition to build (repeatable)", collect)
    .option("--partition-range <from..to>", "a contiguous range of time partitions")
    .option("--max-cost <usd>", "stop dispatching inference calls once this much is spent")
    .option("--concurrency <n>", "assets built at once (default 4)")
    .option("--dry-run", "print the plan and build nothing")
    .option("--no-cache", "call the endpoints even for requests the ledger has answered")
    .option("--json", "print the result as JSON and nothing else on stdout")
    .action((options: MaterializeCliOptions) =>
      run(async (ctx: CliContext) => {
        const maxCost = options.maxCost === undefined ? null : parseUsd(options.maxCost);
        const concurrency =
          options.concurrency === undefined
            ? undefined
            : parsePositiveInt(options.concurrency, "--concurrency");
        const project = await ctx.project();
        const plan = planMaterialization(project.graph, {
          selection: options.select,
          partitions: options.partition ?? [],
          ...(options.partitionRange !== undefined
            ? { partitionRange: options.partitionRange }
            : {}),
        });
        if (options.dryRun) {
          printPlan(ctx, plan, options.json === true);
          return EXIT_OK;
        }
        const { store } = await ctx.projectAndStore();
        const progress = new RunProgress(ctx.io.stderr);
        const cancel = onCancelSignals(ctx.io.stderr);
        const runtime = new InferenceRuntime({
          project: project.definition,
          db: store.db,
          env: ctx.io.env,
          maxCostUsd: maxCost,
          noCache: !options.cache,
          onProgress: (p) => progress.onInference(p),
        });
        let result: RunResult;
        try {
          result = await materialize({
            project: project,
            store,
            plan,
            storageRoot: storageRootOf(project.dir),
            ...(concurrency !== undefined ? { concurrency } : {}),
            signal: cancel.signal,
            maxCostUsd: maxCost,
            runOptions: {
              ...(concurrency !== undefined ? { concurrency } : {}),
              ...(options.partitionRange !== undefined
                ? { partitionRange: options.partitionRange }
                : {}),
            },
            onEvent: (event) => progress.onEvent(event),
            inference: (step) => stepInference(runtime, step),
            log: (assetKey, partitionKey, level, message) =>
              progress.log(
                `[${partitionKey === null ? assetKey : `${assetKey}[${partitionKey}]`}]${level === "info" ? "" : ` ${level}:`} ${message}`,
              ),
          });
        } finally {
          await runtime.close().catch(() => {});
          progress.done();
          cancel.dispose();
        }
        printResult(ctx, result, options.json === true);
        return result.status === "succeeded" ? EXIT_OK : EXIT_FAILED;
      }),
    );
}

function printPlan(
  ctx: CliContext,
  plan: ReturnType<typeof planMaterialization>,
  json: boolean,
): void {
  if (json) {
    writeLine(
      ctx.io.stdout,
      JSON.stringify({
        dryRun: true,
        selection: plan.selection,
        partitions: plan.partitionKeys,
        steps: plan.steps.map((s) => ({
          key: s.assetKey,
          partition: s.partitionKey,
          inputs: s.inputs.map((i) => ({
            name: i.name,
            key: i.assetKey,
            partitions: i.partitions.kind,
          })),
          after: s.upstreamSteps,
        })),
      }),
    );
    return;
  }
  writeLine(
    ctx.io.stdout,
    `plan for "${plan.selection}": ${plan.steps.length} step(s), nothing will be built (dry run)`,
  );
  const table = new Table({
    head: ["#", "step", "reads", "after"],
    style: { head: [], border: [] },
  });
  plan.steps.forEach((s, i) => {
    table.push([
      String(i + 1),
      s.id,
      s.inputs
        .map(
          (input) =>
            `${input.assetKey}${input.partitions.kind === "all" ? " (all partitions)" : ""}`,
        )
        .join("\n"),
      s.upstreamSteps.join("\n"),
    ]);
  });
  writeLine(ctx.io.stdout, table.toString());
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
