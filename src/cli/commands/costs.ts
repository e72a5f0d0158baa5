import Table from "cli-table3";
import { type Command, Option } from "commander";
import { selectAssets } from "../../lineage/selection-evaluator.js";
import {
  COST_GROUPINGS,
  type CostFilter,
  type CostGrouping,
  type CostRow,
  queryCosts,
} from "../../store/cost-queries.js";
import { findRun } from "../../store/run-queries.js";
import { addDecimals } from "../../util/decimal.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { parseSince } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";

const FORMATS = ["table", "json", "csv"] as const;

interface CostsOptions {
  by: CostGrouping;
  run?: string;
  asset?: string;
  model?: string;
  since?: string;
  format: (typeof FORMATS)[number];
}

/** `strata costs [--by ...] [--run ID] [--asset SEL] [--model NAME] [--since DATE|7d|24h] [--format ...]` */
export function registerCostsCommand(program: Command, run: CommandRunner): void {
  program
    .command("costs")
    .description("the cost ledger, aggregated: calls, cache hits, tokens and exact USD")
    .addOption(
      new Option("--by <grouping>", "group rows by").choices(COST_GROUPINGS).default("asset"),
    )
    .option("--run <id>", "only this run (id or unique prefix)")
    .option("--asset <selection>", "only assets in this selection")
    .option("--model <name>", "only this model key")
    .option(
      "--since <when>",
      "only calls since a date (2026-11-01) or a duration ago (7d, 24h, 30m)",
    )
    .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("table"))
    .action((options: CostsOptions) =>
      run(async (ctx: CliContext) => {
        const since = options.since === undefined ? undefined : parseSince(options.since);
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
        const rows = await queryCosts(store.db, options.by, filter);
        print(ctx, options.by, rows, options.format);
      }),
    );
}

const GROUP_HEADERS: Record<CostGrouping, ReadonlyArray<string>> = {
  asset: ["asset"],
  model: ["model"],
  run: ["run"],
  day: ["day"],
  partition: ["asset", "partition"],
  document: ["asset", "partition", "document", "model"],
};

const METRICS = [
  "calls",
  "cacheHits",
  "promptTokens",
  "cachedTokens",
  "completionTokens",
  "costUsd",
] as const;
const METRIC_HEADERS = ["calls", "cache hits", "prompt", "cached", "completion", "cost USD"];

function print(
  ctx: CliContext,
  by: CostGrouping,
  rows: ReadonlyArray<CostRow>,
  format: string,
): void {
  const groups = GROUP_HEADERS[by];
  if (format === "json") {
    writeLine(
      ctx.io.stdout,
      JSON.stringify(
        rows.map((r) => ({
          ...r.group,
          calls: r.calls,
          cacheHits: r.cacheHits,
          promptTokens: r.promptTokens,
          cachedTokens: r.cachedTokens,
          completionTokens: r.completionTokens,
          costUsd: r.costUsd,
        })),
      ),
    );
    return;
  }
  if (format === "csv") {
    writeLine(ctx.io.stdout, [...groups, ...METRICS].map(csvField).join(","));
    for (const r of rows) {
      writeLine(
        ctx.io.stdout,
        [...groups.map((g) => r.group[g] ?? ""), ...METRICS.map((m) => String(r[m]))]
          .map(csvField)
          .join(","),
      );
    }
    return;
  }
  if (rows.length === 0) {
    writeLine(ctx.io.stdout, "no inference calls recorded for this filter");
    return;
  }
  const table = new Table({
    head: [...groups, ...METRIC_HEADERS],
    style: { head: [], border: [] },
    colAligns: [...groups.map(() => "left" as const), ...METRICS.map(() => "right" as const)],
  });
  for (const r of rows) {
    table.push([...groups.map((g) => r.group[g] ?? ""), ...METRICS.map((m) => String(r[m]))]);
  }
  const sum = (m: Exclude<(typeof METRICS)[number], "costUsd">) =>
    rows.reduce((t, r) => t + r[m], 0);
  table.push([
    "total",
    ...groups.slice(1).map(() => ""),
    String(sum("calls")),
    String(sum("cacheHits")),
    String(sum("promptTokens")),
    String(sum("cachedTokens")),
    String(sum("completionTokens")),
    addDecimals(rows.map((r) => r.costUsd)),
  ]);
  writeLine(ctx.io.stdout, table.toString());
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
