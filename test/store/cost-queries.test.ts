import { type RawBuilder, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CostFilter,
  type CostGrouping,
  type CostRow,
  modelKeysServedAs,
  queryCosts,
  queryCostTotals,
} from "../../src/store/cost-queries.js";
import {
  QUOTED_DOCUMENT,
  SEED_EXPECTED,
  SEED_RUNS,
  type SeededLedger,
  seedCostLedger,
  trimDecimal,
} from "../helpers/cost-ledger-seed.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

/** A cost row in a comparable form: exact decimal strings with trailing zeros trimmed. */
interface Comparable {
  group: Record<string, string | null>;
  calls: number;
  cacheHits: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  costUsd: string;
}

/** Without `unpricedCalls`, which the views do not have (its own tests check it). */
function comparable(rows: ReadonlyArray<CostRow>): Comparable[] {
  return rows.map(({ unpricedCalls: _, ...r }) => {
    expect(typeof r.costUsd).toBe("string");
    return { ...r, group: { ...r.group }, costUsd: trimDecimal(r.costUsd) };
  });
}

/** The columns every cost aggregate has, written out by hand (not taken from src/). */
const HAND_AGGREGATES = sql`
  count(*) filter (where cache_hit = false and status in ('succeeded', 'failed')) as calls,
  count(*) filter (where cache_hit = true) as cache_hits,
  coalesce(sum(prompt_tokens), 0) as prompt_tokens,
  coalesce(sum(cached_tokens), 0) as cached_tokens,
  coalesce(sum(completion_tokens), 0) as completion_tokens,
  coalesce(sum(cost_usd), 0)::text as cost_usd`;

interface AggregateRow {
  calls: number | string;
  cache_hits: number | string;
  prompt_tokens: number | string;
  cached_tokens: number | string;
  completion_tokens: number | string;
  cost_usd: string;
}

function toComparable(row: AggregateRow, group: Record<string, string | null>): Comparable {
  return {
    group,
    calls: Number(row.calls),
    cacheHits: Number(row.cache_hits),
    promptTokens: Number(row.prompt_tokens),
    cachedTokens: Number(row.cached_tokens),
    completionTokens: Number(row.completion_tokens),
    costUsd: trimDecimal(String(row.cost_usd)),
  };
}

const VIEWS: ReadonlyArray<{
  grouping: CostGrouping;
  view: string;
  column: string;
}> = [
  { grouping: "asset", view: "cost_by_asset", column: "asset_key" },
  { grouping: "model", view: "cost_by_model", column: "model" },
  { grouping: "run", view: "cost_by_run", column: "run_id" },
  { grouping: "day", view: "cost_by_day", column: "day" },
];

describe.each(BACKENDS)("queryCosts on %s", (backend) => {
  let store: TestStore;
  let seeded: SeededLedger;

  beforeAll(async () => {
    store = await createTestStore(backend);
    seeded = await seedCostLedger(store.db);
  });
  afterAll(async () => {
    await store?.dispose();
  });

  /** One view's rows, ordered by its group column, comparable with `queryCosts`. */
  async function viewRows(view: string, column: string, grouping: string): Promise<Comparable[]> {
    const result = await sql<AggregateRow & { g: string }>`
      select ${sql.ref(column)}::text as g, calls, cache_hits, prompt_tokens, cached_tokens,
             completion_tokens, cost_usd::text as cost_usd
        from ${sql.table(`strata.${view}`)}
       order by 1`.execute(store.db);
    return result.rows.map((r) => toComparable(r, { [grouping]: r.g }));
  }

  /**
   * The ledger aggregated by hand-written SQL over the rows `where` keeps, ordered by the group
   * columns or, for `by: "cost"`, most expensive first.
   */
  async function handRows(
    columns: ReadonlyArray<[name: string, column: string]>,
    where: RawBuilder<unknown> = sql`true`,
    by: "group" | "cost" = "group",
  ): Promise<Comparable[]> {
    const select = sql.join(
      columns.map(([name, column]) => sql`${sql.ref(column)} as ${sql.ref(name)}`),
    );
    const groupBy = sql.join(columns.map(([, column]) => sql.ref(column)));
    const orderBy = by === "cost" ? sql`sum(cost_usd) desc, ${groupBy}` : groupBy;
    const result = await sql<AggregateRow & Record<string, string | null>>`
      select ${select}, ${HAND_AGGREGATES}
        from strata.inference_calls
       where ${where}
       group by ${groupBy}
       order by ${orderBy}`.execute(store.db);
    return result.rows.map((r) =>
      toComparable(r, Object.fromEntries(columns.map(([name]) => [name, r[name] ?? null]))),
    );
  }

  it.each(VIEWS)(
    "groups by $grouping exactly as strata.$view does, row for row",
    async ({ grouping, view, column }) => {
      const fromView = await viewRows(view, column, grouping);
      const fromQuery = comparable(await queryCosts(store.db, grouping));
      expect(fromView.length).toBeGreaterThanOrEqual(3);
      expect(fromQuery).toEqual(fromView);
    },
  );

  it("matches the views' exact decimals also when Postgres compares them as numeric", async () => {
    for (const { grouping, view, column } of VIEWS) {
      for (const row of await queryCosts(store.db, grouping)) {
        const key = Object.values(row.group)[0] ?? null;
        const { rows } = await sql<{ same: boolean }>`
          select (select cost_usd from ${sql.table(`strata.${view}`)}
                   where ${sql.ref(column)}::text = ${key}) = ${row.costUsd}::numeric as same`.execute(
          store.db,
        );
        expect(rows[0]?.same, `${view} ${key}`).toBe(true);
      }
    }
  });

  it("sums each model's calls, cache hits, tokens and cost by DESIGN.md's rule", async () => {
    const rows = comparable(await queryCosts(store.db, "model"));
    expect(rows).toEqual(
      Object.entries(SEED_EXPECTED.byModel).map(([model, metrics]) => ({
        group: { model },
        ...metrics,
      })),
    );
  });

  it("sums each run and each asset to the hand-computed exact cost", async () => {
    const runs = comparable(await queryCosts(store.db, "run"));
    expect(Object.fromEntries(runs.map((r) => [r.group.run, r.costUsd]))).toEqual(
      SEED_EXPECTED.byRun,
    );
    const assets = comparable(await queryCosts(store.db, "asset"));
    expect(Object.fromEntries(assets.map((r) => [r.group.asset, r.costUsd]))).toEqual(
      SEED_EXPECTED.byAsset,
    );
  });

  it("groups days by their UTC date, oldest first", async () => {
    const days = comparable(await queryCosts(store.db, "day"));
    expect(days.map((d) => d.group.day)).toEqual([
      "2025-12-31",
      seeded.day2.toISOString().slice(0, 10),
      seeded.day3.toISOString().slice(0, 10),
    ]);
    expect(days[0]?.costUsd).toBe(SEED_EXPECTED.byRun[SEED_RUNS.alpha]);
  });

  it("groups by partition as hand-written SQL does, a null partition included", async () => {
    const rows = comparable(await queryCosts(store.db, "partition"));
    expect(rows).toEqual(
      await handRows([
        ["asset", "asset_key"],
        ["partition", "partition_key"],
      ]),
    );
    expect(rows).toEqual([
      {
        group: { asset: "analyses", partition: "de" },
        calls: 3,
        cacheHits: 0,
        promptTokens: 600,
        cachedTokens: 0,
        completionTokens: 45,
        costUsd: "0.001038",
      },
      {
        group: { asset: "analyses", partition: "en" },
        calls: 3,
        cacheHits: 2,
        promptTokens: 2000,
        cachedTokens: 600,
        completionTokens: 200,
        costUsd: "0.000226",
      },
      {
        group: { asset: "report", partition: null },
        calls: 2,
        cacheHits: 0,
        promptTokens: 20,
        cachedTokens: 0,
        completionTokens: 2,
        costUsd: "0.0000364",
      },
      {
        group: { asset: "summaries", partition: null },
        calls: 3,
        cacheHits: 1,
        promptTokens: 4,
        cachedTokens: 1,
        completionTokens: 2,
        costUsd: "0.00000023580246879",
      },
    ]);
  });

  it("groups by document as hand-written SQL does, the most expensive first", async () => {
    const rows = comparable(await queryCosts(store.db, "document"));
    const hand = await handRows(
      [
        ["asset", "asset_key"],
        ["partition", "partition_key"],
        ["document", "document_id"],
      ],
      sql`true`,
      "cost",
    );
    expect(
      rows.map(({ group: { model: _, ...group }, ...metrics }) => ({ group, ...metrics })),
    ).toEqual(hand);
    expect(rows).toHaveLength(7);
    // analyses/de/doc3 paid for a failed parse and the large fallback: the most of any document
    expect(rows[0]).toMatchObject({ group: { document: "doc3" }, costUsd: "0.001038" });
    const costs = rows.map((r) => Number(r.costUsd));
    expect(costs).toEqual([...costs].sort((a, b) => b - a));
  });

  it("keeps the most expensive documents under a limit, and totals every row", async () => {
    const all = await queryCosts(store.db, "document");
    const top = await queryCosts(store.db, "document", {}, { limit: 3 });
    expect(top).toEqual(all.slice(0, 3));
    const totals = await queryCostTotals(store.db, "document");
    expect({ ...comparable([totals])[0], groups: totals.groups }).toEqual({
      group: {},
      ...SEED_EXPECTED.total,
      groups: 7,
    });
    expect(totals.unpricedCalls).toBe(0);
    const beta = await queryCostTotals(store.db, "model", { runId: SEED_RUNS.beta });
    expect([beta.groups, beta.calls, trimDecimal(beta.costUsd)]).toEqual([
      2,
      3,
      SEED_EXPECTED.byRun[SEED_RUNS.beta],
    ]);
    const none = await queryCostTotals(store.db, "asset", { model: "no-such-model" });
    expect([none.groups, none.calls, none.costUsd]).toEqual([0, 0, "0"]);
  });

  it("names the model keys an endpoint's model name answered for", async () => {
    expect(await modelKeysServedAs(store.db, "qwen3-8b")).toEqual(["small"]);
    expect(await modelKeysServedAs(store.db, "small")).toEqual([]);
    expect(await modelKeysServedAs(store.db, "no-such-model")).toEqual([]);
  });

  it("names on each document row the model(s) that answered it, not those that failed", async () => {
    const rows = await queryCosts(store.db, "document");
    const modelOf = (asset: string, partition: string | null, document: string) =>
      rows.find(
        (r) =>
          r.group.asset === asset &&
          r.group.partition === partition &&
          r.group.document === document,
      )?.group.model;
    // small failed to parse, the large fallback answered
    expect(modelOf("analyses", "de", "doc3")).toBe("large");
    // answered by both models (in one run)
    expect(modelOf("report", null, QUOTED_DOCUMENT)).toBe("large, small");
    // a paid answer and two cache hits of it
    expect(modelOf("analyses", "en", "doc1")).toBe("small");
    expect(modelOf("summaries", null, "all")).toBe("nano");
    // nobody answered: failed for good, or still dispatched
    expect(modelOf("analyses", "de", "doc4")).toBeNull();
    expect(modelOf("analyses", "de", "doc9")).toBeNull();
  });

  it("keeps tiny costs exact instead of rounding them to zero", async () => {
    const rows = comparable(await queryCosts(store.db, "day", { model: "nano" }));
    expect(rows.map((r) => [r.group.day, r.costUsd])).toEqual([
      ["2025-12-31", "0.00000022345678989"],
      [seeded.day2.toISOString().slice(0, 10), "0.0000000123456789"],
      [seeded.day3.toISOString().slice(0, 10), "0"],
    ]);
    const [document] = comparable(await queryCosts(store.db, "document", { model: "nano" }));
    expect(document).toEqual({
      group: { asset: "summaries", partition: null, document: "all", model: "nano" },
      calls: 3,
      cacheHits: 1,
      promptTokens: 4,
      cachedTokens: 1,
      completionTokens: 2,
      costUsd: "0.00000023580246879",
    });
  });

  describe("filters", () => {
    const cases: ReadonlyArray<{
      name: string;
      filter: () => CostFilter;
      where: () => RawBuilder<unknown>;
    }> = [
      {
        name: "runId",
        filter: () => ({ runId: SEED_RUNS.beta }),
        where: () => sql`run_id = ${SEED_RUNS.beta}`,
      },
      {
        name: "assetKeys",
        filter: () => ({ assetKeys: ["summaries", "report"] }),
        where: () => sql`asset_key in ('summaries', 'report')`,
      },
      {
        name: "model",
        filter: () => ({ model: "small" }),
        where: () => sql`model = 'small'`,
      },
      {
        name: "since (a day)",
        filter: () => ({ since: startOfUtcDay(seeded.day2) }),
        where: () => sql`created_at >= ${startOfUtcDay(seeded.day2).toISOString()}::timestamptz`,
      },
      {
        name: "all four together",
        filter: () => ({
          runId: SEED_RUNS.gamma,
          assetKeys: ["report", "analyses"],
          model: "small",
          since: startOfUtcDay(seeded.day2),
        }),
        where: () =>
          sql`run_id = ${SEED_RUNS.gamma} and asset_key in ('report', 'analyses')
              and model = 'small' and created_at >= ${startOfUtcDay(seeded.day2).toISOString()}::timestamptz`,
      },
    ];

    const GROUP_COLUMNS: Record<CostGrouping, ReadonlyArray<[string, string]>> = {
      asset: [["asset", "asset_key"]],
      model: [["model", "model"]],
      run: [["run", "run_id"]],
      day: [["day", "day"]],
      partition: [
        ["asset", "asset_key"],
        ["partition", "partition_key"],
      ],
      document: [
        ["asset", "asset_key"],
        ["partition", "partition_key"],
        ["document", "document_id"],
      ],
    };

    it.each(cases)(
      "restricts every grouping to the rows $name keeps",
      async ({ filter, where }) => {
        for (const grouping of Object.keys(GROUP_COLUMNS) as CostGrouping[]) {
          const rows = comparable(await queryCosts(store.db, grouping, filter())).map(
            ({ group: { model, ...group }, ...metrics }) => ({
              group: grouping === "model" ? { model: model ?? null, ...group } : group,
              ...metrics,
            }),
          );
          const expected =
            grouping === "day"
              ? await handDayRows(where())
              : await handRows(
                  GROUP_COLUMNS[grouping],
                  where(),
                  grouping === "document" ? "cost" : "group",
                );
          expect(rows, grouping).toEqual(expected);
          const everything = await queryCosts(store.db, grouping);
          expect(rows.length, grouping).toBeLessThanOrEqual(everything.length);
        }
      },
    );

    async function handDayRows(where: RawBuilder<unknown>): Promise<Comparable[]> {
      const result = await sql<AggregateRow & { day: string }>`
        select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, ${HAND_AGGREGATES}
          from strata.inference_calls
         where ${where}
         group by 1
         order by 1`.execute(store.db);
      return result.rows.map((r) => toComparable(r, { day: r.day }));
    }

    it("by run keeps only that run's calls", async () => {
      const rows = comparable(await queryCosts(store.db, "model", { runId: SEED_RUNS.beta }));
      expect(rows).toEqual([
        {
          group: { model: "nano" },
          calls: 2,
          cacheHits: 0,
          promptTokens: 1,
          cachedTokens: 0,
          completionTokens: 0,
          costUsd: "0.0000000123456789",
        },
        {
          group: { model: "small" },
          calls: 1,
          cacheHits: 1,
          promptTokens: 500,
          cachedTokens: 400,
          completionTokens: 50,
          costUsd: "0.000034",
        },
      ]);
    });

    it("by asset keys keeps only those assets, and an empty list keeps nothing", async () => {
      const rows = comparable(
        await queryCosts(store.db, "asset", { assetKeys: ["report", "summaries"] }),
      );
      expect(rows.map((r) => [r.group.asset, r.costUsd])).toEqual([
        ["report", SEED_EXPECTED.byAsset.report],
        ["summaries", SEED_EXPECTED.byAsset.summaries],
      ]);
      expect(await queryCosts(store.db, "asset", { assetKeys: [] })).toEqual([]);
      expect(await queryCosts(store.db, "asset", { assetKeys: ["no/such-asset"] })).toEqual([]);
    });

    it("by model keeps only that model's rows", async () => {
      const rows = comparable(await queryCosts(store.db, "asset", { model: "large" }));
      expect(rows.map((r) => [r.group.asset, r.calls, r.costUsd])).toEqual([
        ["analyses", 1, "0.001"],
        ["report", 1, "0.000035"],
      ]);
      expect(await queryCosts(store.db, "asset", { model: "no-such-model" })).toEqual([]);
    });

    it("by since keeps calls at or after the instant, whatever the run", async () => {
      const sinceDay2 = comparable(
        await queryCosts(store.db, "run", { since: startOfUtcDay(seeded.day2) }),
      );
      expect(sinceDay2.map((r) => [r.group.run, r.costUsd])).toEqual([
        [SEED_RUNS.beta, SEED_EXPECTED.byRun[SEED_RUNS.beta]],
        [SEED_RUNS.gamma, SEED_EXPECTED.byRun[SEED_RUNS.gamma]],
      ]);
      // the last hour: gamma, and beta's still-dispatched call (no call, no cost)
      const lastHour = comparable(
        await queryCosts(store.db, "run", { since: new Date(seeded.day3.getTime() - 60_000) }),
      );
      expect(lastHour.map((r) => [r.group.run, r.calls, r.cacheHits, r.costUsd])).toEqual([
        [SEED_RUNS.beta, 0, 0, "0"],
        [SEED_RUNS.gamma, 2, 2, SEED_EXPECTED.byRun[SEED_RUNS.gamma]],
      ]);
      // the boundary is inclusive: a call at exactly `since` counts
      const exact = await queryCosts(store.db, "run", { since: seeded.day1 });
      expect(exact.map((r) => r.group.run)).toContain(SEED_RUNS.alpha);
      expect(
        await queryCosts(store.db, "run", { since: new Date(seeded.day1.getTime() + 1) }),
      ).not.toContainEqual(expect.objectContaining({ group: { run: SEED_RUNS.alpha } }));
    });
  });
});

describe.each(BACKENDS)("queryCosts with a model that has no price, on %s", (backend) => {
  let store: TestStore;

  beforeAll(async () => {
    store = await createTestStore(backend);
    await store.db
      .insertInto("strata.runs")
      .values({
        id: "run-unpriced",
        status: "succeeded",
        selection: "*",
        started_at: new Date(),
        finished_at: new Date(),
        error: null,
        max_cost_usd: null,
        pid: null,
        hostname: null,
        resumed_from: null,
      })
      .execute();
    const call = (
      document: string,
      model: "free" | "paid",
      extra: { status?: "succeeded" | "dispatched"; cacheHit?: boolean } = {},
    ) => ({
      run_id: "run-unpriced",
      materialization_id: null,
      asset_key: "analyses",
      partition_key: null,
      document_id: document,
      model,
      provider_model: model === "free" ? "qwen3-8b" : "qwen3-72b",
      endpoint: "local",
      request_hash: `${document}/${model}/${extra.cacheHit === true}/${extra.status ?? ""}`,
      status: extra.status ?? "succeeded",
      attempts: 1,
      prompt_tokens: extra.cacheHit === true || extra.status === "dispatched" ? 0 : 100,
      cached_tokens: 0,
      completion_tokens: extra.cacheHit === true || extra.status === "dispatched" ? 0 : 10,
      reasoning_tokens: 0,
      // a model without a price is recorded with zero prices (and cost 0)
      input_price_per_mtok: model === "free" ? "0" : "1",
      cached_input_price_per_mtok: model === "free" ? "0" : "0.5",
      output_price_per_mtok: model === "free" ? "0" : "2",
      latency_ms: 1,
      cache_hit: extra.cacheHit === true,
      cached_from: null,
      error: null,
      output: null,
    });
    await store.db
      .insertInto("strata.inference_calls")
      .values([
        call("d1", "free"),
        call("d2", "free"),
        call("d2", "free", { cacheHit: true }),
        call("d3", "free", { status: "dispatched" }),
        call("d1", "paid"),
      ])
      .execute();
  });
  afterAll(async () => {
    await store?.dispose();
  });

  it("counts that model's billed calls as unpriced, not cache hits or dispatched rows", async () => {
    const rows = await queryCosts(store.db, "model");
    expect(rows.map((r) => [r.group.model, r.calls, r.unpricedCalls, r.costUsd])).toEqual([
      ["free", 2, 2, "0"],
      ["paid", 1, 0, "0.00012"],
    ]);
    const totals = await queryCostTotals(store.db, "document");
    expect([totals.calls, totals.unpricedCalls, totals.groups]).toEqual([3, 2, 3]);
  });
});

function startOfUtcDay(date: Date): Date {
  return new Date(`${date.toISOString().slice(0, 10)}T00:00:00Z`);
}
