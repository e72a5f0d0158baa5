import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Database } from "./database.js";

/** How `strata costs` groups the ledger. */
export type CostGrouping = "asset" | "model" | "run" | "day" | "partition" | "document";

/** The groupings, in the order the CLI lists them. */
export const COST_GROUPINGS: ReadonlyArray<CostGrouping> = [
  "asset",
  "model",
  "run",
  "day",
  "partition",
  "document",
];

/** Which ledger rows to count. */
export interface CostFilter {
  readonly runId?: string;
  readonly assetKeys?: ReadonlyArray<string>;
  readonly model?: string;
  readonly since?: Date;
}

/** One aggregated row; `group` holds the grouping's columns (`asset`, `model`, ...). */
export interface CostRow {
  readonly group: Readonly<Record<string, string | null>>;
  readonly calls: number;
  readonly cacheHits: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
  /** Exact decimal, as Postgres summed it. */
  readonly costUsd: string;
}

// The aggregates of the strata.cost_by_* views, written once: the CLI's numbers and the views'
// are the same expressions over the same rows.
const AGGREGATES = sql`
  count(*) filter (where not cache_hit and status <> 'dispatched')::bigint as calls,
  count(*) filter (where cache_hit)::bigint as cache_hits,
  coalesce(sum(prompt_tokens), 0)::bigint as prompt_tokens,
  coalesce(sum(cached_tokens), 0)::bigint as cached_tokens,
  coalesce(sum(completion_tokens), 0)::bigint as completion_tokens,
  coalesce(sum(cost_usd), 0)::text as cost_usd`;

/** The group columns of each grouping: output name → SQL expression. */
const GROUP_COLUMNS: Record<CostGrouping, ReadonlyArray<[string, RawBuilder<unknown>]>> = {
  asset: [["asset", sql`asset_key`]],
  model: [["model", sql`model`]],
  run: [["run", sql`run_id`]],
  day: [["day", sql`((created_at at time zone 'UTC')::date)::text`]],
  partition: [
    ["asset", sql`asset_key`],
    ["partition", sql`partition_key`],
  ],
  document: [
    ["asset", sql`asset_key`],
    ["partition", sql`partition_key`],
    ["document", sql`document_id`],
  ],
};

/**
 * The cost ledger aggregated by `grouping`, filtered, ordered by the group columns. Unfiltered,
 * the asset, model, run and day groupings equal the `strata.cost_by_*` views row for row.
 * `document` rows also name the model(s) that answered the document.
 *
 * @example
 * const rows = await queryCosts(store.db, "model", { since: new Date("2026-11-01") });
 */
export async function queryCosts(
  db: Kysely<Database>,
  grouping: CostGrouping,
  filter: CostFilter = {},
): Promise<ReadonlyArray<CostRow>> {
  const columns = GROUP_COLUMNS[grouping];
  const conditions: RawBuilder<unknown>[] = [sql`true`];
  if (filter.runId !== undefined) conditions.push(sql`run_id = ${filter.runId}`);
  if (filter.model !== undefined) conditions.push(sql`model = ${filter.model}`);
  if (filter.since !== undefined)
    conditions.push(sql`created_at >= ${filter.since.toISOString()}::timestamptz`);
  if (filter.assetKeys !== undefined) {
    conditions.push(sql`asset_key = any(${[...filter.assetKeys]}::text[])`);
  }
  const selectGroup = sql.join(columns.map(([name, expr]) => sql`${expr} as ${sql.ref(name)}`));
  const groupBy = sql.join(columns.map(([, expr]) => expr));
  const answeredBy =
    grouping === "document"
      ? sql`, string_agg(distinct model, ', ') filter (where status = 'succeeded') as answered_by`
      : sql``;
  const result = await sql<Record<string, unknown>>`
    select ${selectGroup}, ${AGGREGATES} ${answeredBy}
      from strata.inference_calls
     where ${sql.join(conditions, sql` and `)}
     group by ${groupBy}
     order by ${groupBy}`.execute(db);
  return result.rows.map((r) => {
    const group: Record<string, string | null> = {};
    for (const [name] of columns) group[name] = r[name] === null ? null : String(r[name]);
    if (grouping === "document") group.model = (r.answered_by as string | null) ?? null;
    return {
      group,
      calls: Number(r.calls),
      cacheHits: Number(r.cache_hits),
      promptTokens: Number(r.prompt_tokens),
      cachedTokens: Number(r.cached_tokens),
      completionTokens: Number(r.completion_tokens),
      costUsd: String(r.cost_usd),
    };
  });
}
