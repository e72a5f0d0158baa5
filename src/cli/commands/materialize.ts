import Table from "cli-table3";
import type { Command } from "commander";
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
          printPlan(ctx, plan, options.json === true);
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
