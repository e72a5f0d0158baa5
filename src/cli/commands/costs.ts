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
import { parsePositiveInt } from "../option-parsers.js";
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
