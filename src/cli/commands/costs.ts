import { type Command, Option } from "commander";
import { StrataError } from "../../errors.js";
import { selectAssets } from "../../lineage/selection-evaluator.js";
import {
  COST_GROUPINGS,
  type CostFilter,
  type CostGrouping,
  hasModelKey,
  modelKeysServedAs,
  queryCosts,
  queryCostTotals,
} from "../../store/cost-queries.js";
import { findRun } from "../../store/run-queries.js";
import type { Store } from "../../store/store.js";
import type { CliContext } from "../cli-context.js";
import { COST_FORMATS, type CostFormat, printCostReport } from "../cost-report.js";
import { parsePositiveInt, parseSince } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";

interface CostsOptions {
  by: CostGrouping;
  run?: string;
  asset?: string;
  model?: string;
  since?: string;
  limit?: string;
  format: CostFormat;
}

/**
 * `strata costs [--by ...] [--run ID] [--asset SEL] [--model KEY] [--since DATE|7d|24h]
 * [--limit N] [--format ...]`
 */
export function registerCostsCommand(program: Command, run: CommandRunner): void {
  program
    .command("costs")
    .description("the cost ledger, aggregated: calls, cache hits, tokens and exact USD")
    .addOption(
      new Option("--by <grouping>", "group rows by").choices(COST_GROUPINGS).default("asset"),
    )
    .option("--run <id>", "only this run (id or unique prefix)")
    .option("--asset <selection>", "only assets in this selection")
    .option("--model <key>", "only this model key (a key of the project's models)")
    .option(
      "--since <when>",
      "only calls since a date (2026-11-01) or a duration ago (7d, 24h, 30m)",
    )
    .option("--limit <n>", "with --by document: the N most expensive documents")
    .addOption(
      new Option("--format <format>", "output format").choices(COST_FORMATS).default("table"),
    )
    .action((options: CostsOptions) =>
      run(async (ctx: CliContext) => {
        const since = options.since === undefined ? undefined : parseSince(options.since);
        const limit = parseLimit(options);
        let store: Awaited<ReturnType<CliContext["store"]>>;
        let assetKeys: ReadonlyArray<string> | undefined;
        if (options.asset !== undefined) {
          const opened = await ctx.projectAndStore();
          store = opened.store;
          assetKeys = selectAssets(options.asset, opened.project.graph);
        } else {
          store = await ctx.store();
        }
        const filter: CostFilter = {
          ...(options.run !== undefined
            ? { runId: (await findRun(store.db, options.run)).id }
            : {}),
          ...(assetKeys !== undefined ? { assetKeys } : {}),
          ...(options.model !== undefined ? { model: options.model } : {}),
          ...(since !== undefined ? { since } : {}),
        };
        if (options.model !== undefined) await checkModelKey(store, options.model);
        const rows = await queryCosts(
          store.db,
          options.by,
          filter,
          limit === undefined ? {} : { limit },
        );
        const totals = await queryCostTotals(store.db, options.by, filter);
        printCostReport(ctx.io.stdout, { by: options.by, rows, totals }, options.format);
      }),
    );
}

function parseLimit(options: CostsOptions): number | undefined {
  if (options.limit === undefined) return undefined;
  const limit = parsePositiveInt(options.limit, "--limit");
  if (options.by !== "document") {
    throw new StrataError(
      "bad_usage",
      `--limit applies to --by document (the most expensive documents first), not --by ${options.by}; leave it out`,
    );
  }
  return limit;
}

/**
 * `--model` takes a model key of the project (`small`), as the ledger's `model` column holds;
 * given the name an endpoint serves (`qwen3-8b`) instead, say so and name the key.
 */
async function checkModelKey(store: Store, model: string): Promise<void> {
  if (await hasModelKey(store.db, model)) return;
  const keys = await modelKeysServedAs(store.db, model);
  if (keys.length === 0) return;
  const named = keys.map((k) => `"${k}"`).join(", ");
  throw new StrataError(
    "bad_usage",
    `--model takes a model key of the project, and "${model}" is the model name its endpoint serves for ${keys.length === 1 ? "key" : "keys"} ${named}; use --model ${keys[0]}`,
  );
}
