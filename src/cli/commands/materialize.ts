import type { Command } from "commander";
import { type DryRunStep, estimatePlan } from "../../materialize/dry-run.js";
import { planMaterialization } from "../../materialize/materialization-plan.js";
import { addDecimals } from "../../util/decimal.js";
import { formatUsdRange } from "../../util/usd.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { EXIT_FAILED, EXIT_OK } from "../exit-codes.js";
import { collect, parsePositiveInt, parseUsd } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { runPlan } from "../run-plan.js";
import { outputWidth, renderTable } from "../text-table.js";

interface MaterializeCliOptions {
  select: string;
  partition?: string[];
  partitionRange?: string;
  allPartitions?: boolean;
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
    .option("--all-partitions", "every partition of the selected partitioned assets")
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
          ...(options.allPartitions === true ? { allPartitions: true } : {}),
        });
        if (options.dryRun) {
          const store = await ctx.store();
          const estimates = await estimatePlan({ project, store, plan, noCache: !options.cache });
          printPlan(ctx, plan, estimates, options.json === true);
          return EXIT_OK;
        }
        const { store } = await ctx.projectAndStore();
        const result = await runPlan(ctx, project, store, plan, {
          maxCostUsd: maxCost,
          concurrency,
          noCache: !options.cache,
          json: options.json === true,
          resumedFrom: null,
        });
        return result.status === "succeeded" ? EXIT_OK : EXIT_FAILED;
      }),
    );
}

/** The sums of a dry run's estimates: what the whole plan would cost. */
interface DryRunTotals {
  readonly documents: number;
  readonly cacheHits: number;
  readonly promptTokens: number;
  readonly outputTokenCeiling: number;
  readonly costLowUsd: string;
  readonly costHighUsd: string;
}

function totalsOf(estimates: ReadonlyArray<DryRunStep>): DryRunTotals {
  const inference = estimates.flatMap((e) => (e.inference === null ? [] : [e.inference]));
  const sum = (pick: (e: (typeof inference)[number]) => number) =>
    inference.reduce((t, e) => t + pick(e), 0);
  return {
    documents: sum((e) => e.documents),
    cacheHits: sum((e) => e.cacheHits),
    promptTokens: sum((e) => e.promptTokens),
    outputTokenCeiling: sum((e) => e.outputTokenCeiling),
    costLowUsd: addDecimals(inference.map((e) => e.costLowUsd)),
    costHighUsd: addDecimals(inference.map((e) => e.costHighUsd)),
  };
}

function printPlan(
  ctx: CliContext,
  plan: ReturnType<typeof planMaterialization>,
  estimates: ReadonlyArray<DryRunStep>,
  json: boolean,
): void {
  const totals = totalsOf(estimates);
  if (json) {
    writeLine(
      ctx.io.stdout,
      JSON.stringify({
        dryRun: true,
        selection: plan.selection,
        partitions: plan.partitionKeys,
        steps: estimates.map(({ step, inference, note }) => ({
          key: step.assetKey,
          partition: step.partitionKey,
          inputs: step.inputs.map((i) => ({
            name: i.name,
            key: i.assetKey,
            partitions: i.partitions.kind,
          })),
          after: step.upstreamSteps,
          inference,
          note,
        })),
        totals,
      }),
    );
    return;
  }
  writeLine(
    ctx.io.stdout,
    `plan for "${plan.selection}": ${plan.steps.length} step(s); dry run: nothing is built and no model is called`,
  );
  const estimated = estimates.some((e) => e.inference !== null);
  writeLine(
    ctx.io.stdout,
    renderTable({
      columns: [
        { header: "step", fit: "middle" },
        { header: "docs", align: "right" },
        { header: "cached", align: "right" },
        { header: "input", align: "right" },
        { header: "max output", align: "right" },
        { header: "est. cost", align: "right" },
        { header: "reads", fit: "wrap", minWidth: 10 },
      ],
      rows: estimates.map(({ step, inference, note }) => [
        step.id,
        inference === null ? "" : String(inference.documents),
        inference === null ? "" : String(inference.cacheHits),
        inference === null ? "" : String(inference.promptTokens),
        inference === null ? "" : String(inference.outputTokenCeiling),
        inference === null
          ? note === null
            ? ""
            : "-"
          : formatUsdRange(inference.costLowUsd, inference.costHighUsd),
        step.inputs
          .map(
            (input) =>
              `${input.assetKey}${input.partitions.kind === "all" ? " (all partitions)" : ""}`,
          )
          .join("\n"),
      ]),
      footer: estimated
        ? [
            [
              "total",
              String(totals.documents),
              String(totals.cacheHits),
              String(totals.promptTokens),
              String(totals.outputTokenCeiling),
              formatUsdRange(totals.costLowUsd, totals.costHighUsd),
              "",
            ],
          ]
        : [],
      maxWidth: outputWidth(ctx.io.stdout),
    }),
  );
  for (const { step, note } of estimates) {
    if (note !== null) writeLine(ctx.io.stdout, `${step.id}: ${note}`);
  }
  writeLine(
    ctx.io.stdout,
    estimated
      ? `estimated total: ${formatUsdRange(totals.costLowUsd, totals.costHighUsd)} for ${totals.documents} document(s), ${totals.cacheHits} answered from the ledger`
      : "estimated total: no step calls a model",
  );
}
