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
  /**
   * Calls priced at zero for input, cached input and output alike: their model had no price in
   * the project (a model without one is recorded at cost 0), so `costUsd` leaves them out.
   */
  readonly unpricedCalls: number;
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

/** Billed calls whose price snapshot is all zeros: their model had no price. */
const UNPRICED = sql`
  count(*) filter (where not cache_hit and status <> 'dispatched'
                     and input_price_per_mtok = 0 and cached_input_price_per_mtok = 0
                     and output_price_per_mtok = 0)::bigint as unpriced_calls`;

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
 * The cost ledger aggregated by `grouping`, filtered, ordered by the group columns, except
 * `document` rows: the most expensive first (ties by the group columns), the top `limit` of them
 * when a limit is given. Unfiltered, the asset, model, run and day groupings equal the
 * `strata.cost_by_*` views row for row. `document` rows also name the model(s) that answered the
 * document.
 *
 * @example
 * const rows = await queryCosts(store.db, "model", { since: new Date("2026-11-01") });
 * const top = await queryCosts(store.db, "document", {}, { limit: 10 });
 */
export async function queryCosts(
  db: Kysely<Database>,
  grouping: CostGrouping,
  filter: CostFilter = {},
  options: { readonly limit?: number } = {},
): Promise<ReadonlyArray<CostRow>> {
  const columns = GROUP_COLUMNS[grouping];
  const conditions = filterConditions(filter);
  const selectGroup = sql.join(columns.map(([name, expr]) => sql`${expr} as ${sql.ref(name)}`));
  const groupBy = sql.join(columns.map(([, expr]) => expr));
  const answeredBy =
    grouping === "document"
      ? sql`, string_agg(distinct model, ', ') filter (where status = 'succeeded') as answered_by`
      : sql``;
  const orderBy = grouping === "document" ? sql`sum(cost_usd) desc, ${groupBy}` : groupBy;
  const limit = options.limit === undefined ? sql`` : sql`limit ${options.limit}`;
  const result = await sql<Record<string, unknown>>`
    select ${selectGroup}, ${AGGREGATES}, ${UNPRICED} ${answeredBy}
      from strata.inference_calls
     where ${sql.join(conditions, sql` and `)}
     group by ${groupBy}
     order by ${orderBy}
     ${limit}`.execute(db);
  return result.rows.map((r) => {
    const group: Record<string, string | null> = {};
    for (const [name] of columns) group[name] = r[name] === null ? null : String(r[name]);
    if (grouping === "document") group.model = (r.answered_by as string | null) ?? null;
    return { group, ...metricsOf(r) };
  });
}

/** The totals of {@link queryCosts} over every matching row, and how many groups it has. */
export interface CostTotals extends CostRow {
  /** The rows `queryCosts` returns without a limit. */
  readonly groups: number;
}

/**
 * The ledger's totals for `filter`, summed by the database (exact), with the number of rows
 * `grouping` gives: what a totals row shows, also under a `limit`.
 *
 * @example
 * const { costUsd, groups } = await queryCostTotals(store.db, "document", { runId });
 */
export async function queryCostTotals(
  db: Kysely<Database>,
  grouping: CostGrouping,
  filter: CostFilter = {},
): Promise<CostTotals> {
  const groupBy = sql.join(GROUP_COLUMNS[grouping].map(([, expr]) => expr));
  const result = await sql<Record<string, unknown>>`
    with matched as (
      select * from strata.inference_calls where ${sql.join(filterConditions(filter), sql` and `)}
    )
    select (select count(*) from (select 1 from matched group by ${groupBy}) g)::bigint as groups,
           ${AGGREGATES}, ${UNPRICED}
      from matched`.execute(db);
  const r = result.rows[0] ?? {};
  return { group: {}, groups: Number(r.groups ?? 0), ...metricsOf(r) };
}

/**
 * The model keys whose calls the endpoint answered as `providerModel` (the model name it serves,
 * `provider_model` in the ledger), for saying that `--model` takes a key.
 *
 * @example
 * await modelKeysServedAs(store.db, "qwen3-8b"); // ["small"]
 */
export async function modelKeysServedAs(
  db: Kysely<Database>,
  providerModel: string,
): Promise<ReadonlyArray<string>> {
  const result = await sql<{ model: string }>`
    select distinct model from strata.inference_calls
     where provider_model = ${providerModel} and model <> ${providerModel}
     order by model`.execute(db);
  return result.rows.map((r) => r.model);
}

/** Whether any ledger row was made for the model key `model`. */
export async function hasModelKey(db: Kysely<Database>, model: string): Promise<boolean> {
  const result = await sql<{ found: boolean }>`
    select exists (select 1 from strata.inference_calls where model = ${model}) as found`.execute(
    db,
  );
  return result.rows[0]?.found === true;
}

function filterConditions(filter: CostFilter): RawBuilder<unknown>[] {
  const conditions: RawBuilder<unknown>[] = [sql`true`];
  if (filter.runId !== undefined) conditions.push(sql`run_id = ${filter.runId}`);
  if (filter.model !== undefined) conditions.push(sql`model = ${filter.model}`);
  if (filter.since !== undefined)
    conditions.push(sql`created_at >= ${filter.since.toISOString()}::timestamptz`);
  if (filter.assetKeys !== undefined) {
    conditions.push(sql`asset_key = any(${[...filter.assetKeys]}::text[])`);
  }
  return conditions;
}

function metricsOf(r: Record<string, unknown>): Omit<CostRow, "group"> {
  return {
    calls: Number(r.calls),
    unpricedCalls: Number(r.unpriced_calls),
    cacheHits: Number(r.cache_hits),
    promptTokens: Number(r.prompt_tokens),
    cachedTokens: Number(r.cached_tokens),
    completionTokens: Number(r.completion_tokens),
    costUsd: String(r.cost_usd),
  };
}
