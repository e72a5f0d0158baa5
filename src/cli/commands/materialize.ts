import type { Command } from "commander";
import type { ProjectDefinition } from "../../assets/project-definition.js";
import { type DryRunStep, estimatePlan } from "../../materialize/dry-run.js";
import { planMaterialization } from "../../materialize/materialization-plan.js";
import { projectStorageRoot } from "../../materialize/run-project.js";
import { addDecimals } from "../../util/decimal.js";
import { formatUsdRange } from "../../util/usd.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { EXIT_FAILED, EXIT_OK } from "../exit-codes.js";
import { collect, parsePositiveInt, parseUsd } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { runPlan } from "../run-plan.js";
import { fitText, outputWidth, renderTable } from "../text-table.js";

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
          const estimates = await estimatePlan({
            project,
            store,
            plan,
            storageRoot: projectStorageRoot(project, ctx.io.env),
            noCache: !options.cache,
          });
          printPlan(ctx, plan, estimates, {
            json: options.json === true,
            unpriced: unpricedModels(project.definition),
          });
          return EXIT_OK;
        }
        // the run façade refreshes the declared catalog itself
        const store = await ctx.store();
        const result = await runPlan(ctx, project, store, plan, {
          maxCostUsd: maxCost,
          concurrency,
          noCache: !options.cache,
          json: options.json === true,
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

/** The keys of the project's models that have no price. */
function unpricedModels(project: ProjectDefinition): ReadonlySet<string> {
  return new Set(
    Object.entries(project.models)
      .filter(([, model]) => model.price === undefined)
      .map(([key]) => key),
  );
}

function printPlan(
  ctx: CliContext,
  plan: ReturnType<typeof planMaterialization>,
  estimates: ReadonlyArray<DryRunStep>,
  options: { readonly json: boolean; readonly unpriced: ReadonlySet<string> },
): void {
  const { json, unpriced } = options;
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
  const costOf = (inference: NonNullable<DryRunStep["inference"]>) =>
    inference.models.every((m) => unpriced.has(m))
      ? "unpriced"
      : formatUsdRange(inference.costLowUsd, inference.costHighUsd);
  writeLine(
    ctx.io.stdout,
    renderTable({
      columns: [
        // the step, then what it reads, one input a line ("(all)": every partition of it)
        { header: "step", fit: "middle" },
        { header: "docs", align: "right" },
        { header: "cached", align: "right" },
        { header: "input", align: "right" },
        { header: "output", align: "right" },
        { header: "est. cost", align: "right" },
      ],
      rows: estimates.map(({ step, inference }) => [
        [
          step.id,
          ...step.inputs.map(
            (input) =>
              `  reads ${input.assetKey}${input.partitions.kind === "all" ? " (all)" : ""}`,
          ),
        ].join("\n"),
        inference === null ? "" : String(inference.documents),
        inference === null ? "" : String(inference.cacheHits),
        inference === null ? "" : String(inference.promptTokens),
        inference === null ? "" : String(inference.outputTokenCeiling),
        inference === null ? "" : costOf(inference),
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
            ],
          ]
        : [],
      maxWidth: outputWidth(ctx.io.stdout),
    }),
  );
  const width = outputWidth(ctx.io.stdout);
  const say = (text: string) => {
    for (const line of fitText(text, width, "wrap")) writeLine(ctx.io.stdout, line);
  };
  for (const { step, note } of estimates) if (note !== null) say(`${step.id}: ${note}`);
  say(
    estimated
      ? `estimated total: ${formatUsdRange(totals.costLowUsd, totals.costHighUsd)} (${totals.documents} documents, ${totals.cacheHits} cached)`
      : "estimated total: no step calls a model",
  );
}
