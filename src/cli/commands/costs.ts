import Table from "cli-table3";
import { type Command, Option } from "commander";
import { StrataError } from "../../errors.js";
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

/** `2026-11-01`, an ISO timestamp, or `7d` / `24h` / `30m` / `90s` ago. */
export function parseSince(value: string, now = Date.now()): Date {
  const text = value.trim();
  const bad = () =>
    new StrataError(
      "bad_usage",
      `--since "${value}" is neither a date (2026-11-01) nor a duration (7d, 24h, 30m)`,
    );
  let ms: number;
  const relative = /^(\d+)\s*(d|h|m|s)$/.exec(text);
  if (relative !== null) {
    const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 }[
      relative[2] as "d" | "h" | "m" | "s"
    ];
    ms = now - Number(relative[1]) * unit;
  } else {
    // ISO dates and timestamps only: Date.parse's legacy formats would read "7" as 2001-07-01.
    const iso =
      /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(
        text,
      );
    if (iso === null) throw bad();
    const day = new Date(Date.UTC(Number(iso[1]), Number(iso[2]) - 1, Number(iso[3])));
    if (day.getUTCMonth() !== Number(iso[2]) - 1 || day.getUTCDate() !== Number(iso[3]))
      throw bad();
    ms = Date.parse(iso[4] === undefined ? `${text}T00:00:00Z` : text);
  }
  if (!Number.isFinite(ms) || Number.isNaN(new Date(ms).getTime())) throw bad();
  return new Date(ms);
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
