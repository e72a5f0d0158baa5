import Table from "cli-table3";
import type { Command } from "commander";
import { type DryRunStep, estimatePlan } from "../../materialize/dry-run.js";
import { planMaterialization } from "../../materialize/materialization-plan.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { EXIT_FAILED, EXIT_OK } from "../exit-codes.js";
import { collect, parsePositiveInt, parseUsd } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { runPlan } from "../run-plan.js";

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
        });
        return result.status === "succeeded" ? EXIT_OK : EXIT_FAILED;
      }),
    );
}

function printPlan(
  ctx: CliContext,
  plan: ReturnType<typeof planMaterialization>,
  estimates: ReadonlyArray<DryRunStep>,
  json: boolean,
): void {
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
      }),
    );
    return;
  }
  writeLine(
    ctx.io.stdout,
    `plan for "${plan.selection}": ${plan.steps.length} step(s); dry run: nothing is built and no model is called`,
  );
  const table = new Table({
    head: [
      "#",
      "step",
      "reads",
      "documents",
      "cached",
      "est. prompt tokens",
      "output ceiling",
      "est. cost USD",
    ],
    style: { head: [], border: [] },
  });
  estimates.forEach(({ step, inference, note }, i) => {
    table.push([
      String(i + 1),
      step.id,
      step.inputs
        .map(
          (input) =>
            `${input.assetKey}${input.partitions.kind === "all" ? " (all partitions)" : ""}`,
        )
        .join("\n"),
      inference === null ? (note ?? "") : String(inference.documents),
      inference === null ? "" : String(inference.cacheHits),
      inference === null ? "" : String(inference.promptTokens),
      inference === null ? "" : String(inference.outputTokenCeiling),
      inference === null ? "" : `${inference.costLowUsd} – ${inference.costHighUsd}`,
    ]);
  });
  writeLine(ctx.io.stdout, table.toString());
}
