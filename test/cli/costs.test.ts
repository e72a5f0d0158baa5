import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSince } from "../../src/cli/option-parsers.js";
import { StrataError } from "../../src/errors.js";
import {
  COST_GROUPINGS,
  type CostFilter,
  type CostGrouping,
  type CostRow,
  queryCosts,
} from "../../src/store/cost-queries.js";
import { migrate } from "../../src/store/migrator.js";
import {
  type BackendProject,
  createBackendProject,
  withStore,
} from "../helpers/backend-project.js";
import {
  QUOTED_DOCUMENT,
  SEED_EXPECTED,
  SEED_RUNS,
  seedCostLedger,
  trimDecimal,
} from "../helpers/cost-ledger-seed.js";
import { CLI_TEST_OPTIONS } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { BACKENDS } from "../helpers/test-store.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly) against one project per backend whose ledger is written straight
// into its database (see test/helpers/cost-ledger-seed.ts).

/** The ledger's assets, declared so that `--asset` selections resolve: `group:llm` is two. */
const COSTS_PROJECT = `import { asset, defineProject, staticPartitions } from "strata";

const languages = staticPartitions(["en", "de"]);
const rows = async () => [{ id: "1" }];
export const documents = asset({ key: "raw/documents", group: "ingest", partitions: languages, compute: rows });
export const analyses = asset({ key: "analyses", group: "llm", partitions: languages, deps: { documents }, compute: rows });
export const summaries = asset({ key: "summaries", group: "llm", deps: { analyses }, compute: rows });
export const report = asset({ key: "report", group: "reporting", deps: { summaries }, compute: rows });

export default defineProject({ assets: [documents, analyses, summaries, report] });
`;

/** What `costs --format json` prints for one row. */
type JsonRow = Record<string, string | number | boolean | null>;

function jsonRows(rows: ReadonlyArray<CostRow>): JsonRow[] {
  return rows.map((r) => ({
    ...r.group,
    calls: r.calls,
    cacheHits: r.cacheHits,
    promptTokens: r.promptTokens,
    cachedTokens: r.cachedTokens,
    completionTokens: r.completionTokens,
    costUsd: trimDecimal(r.costUsd),
    unpricedCalls: r.unpricedCalls,
    total: false,
  }));
}

function trimmed(rows: JsonRow[]): JsonRow[] {
  return rows.map((r) => ({ ...r, costUsd: trimDecimal(String(r.costUsd)) }));
}

/** The rows of a JSON or CSV cost report without its totals row, which must come last. */
function withoutTotal<T extends { total?: unknown }>(rows: T[]): T[] {
  expect(rows.at(-1)?.total, "the last row is the totals row").toSatisfy(
    (v: unknown) => v === true || v === "true",
  );
  expect(rows.slice(0, -1).every((r) => r.total === false || r.total === "false")).toBe(true);
  return rows.slice(0, -1);
}

function ok(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

/** A usage error: exit 2 and one line on stderr, no stack trace. */
function usageError(result: CliResult): string {
  expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(2);
  expect(result.stdout).toBe("");
  expect(result.stderr).not.toMatch(/^\s+at /m);
  return result.stderr;
}

/** A minimal RFC 4180 reader: fields, quotes doubled inside quoted fields. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      record.push(field);
      field = "";
    } else if (ch === "\n") {
      record.push(field);
      records.push(record);
      record = [];
      field = "";
    } else if (ch !== "\r") field += ch;
  }
  if (field !== "" || record.length > 0) records.push([...record, field]);
  return records;
}

/**
 * The cells of a printed table, line by line (header first, rules left out): the columns are
 * where the rule under the header has its runs of "─".
 */
function tableCells(table: string): string[][] {
  const lines = table.trimEnd().split("\n");
  const rule = lines.find((l) => /^─/.test(l)) ?? "";
  const spans = [...rule.matchAll(/─+/g)].map((m) => [m.index, m.index + m[0].length] as const);
  return lines
    .filter((l) => !/^─/.test(l) && l.trim() !== "")
    .map((l) =>
      spans.map(([from, to], i) => l.slice(from, i === spans.length - 1 ? undefined : to).trim()),
    );
}

const SEVEN_DAYS_MS = 7 * 86_400_000;
const INJECTION = "'; drop schema strata cascade; --";

describe.each(BACKENDS)("strata costs on %s", (backend) => {
  let project: BackendProject;
  /** What queryCosts returns for each grouping, and the views for theirs, read in-process. */
  const expected = new Map<CostGrouping, JsonRow[]>();
  const views = new Map<CostGrouping, JsonRow[]>();
  const filtered = new Map<string, JsonRow[]>();

  beforeAll(async () => {
    project = await createBackendProject(backend, COSTS_PROJECT);
    await withStore(project, async (store) => {
      // the embedded database starts migrated; a new Postgres database is migrated here, as the
      // CLI's first command would
      await migrate(store.db);
      await seedCostLedger(store.db);
      for (const grouping of COST_GROUPINGS) {
        expected.set(grouping, jsonRows(await queryCosts(store.db, grouping)));
      }
      for (const [grouping, view, column] of [
        ["asset", "cost_by_asset", "asset_key"],
        ["model", "cost_by_model", "model"],
        ["run", "cost_by_run", "run_id"],
        ["day", "cost_by_day", "day"],
      ] as const) {
        const { rows } = await sql<Record<string, string | number>>`
          select ${sql.ref(column)}::text as g, calls, cache_hits, prompt_tokens, cached_tokens,
                 completion_tokens, cost_usd::text as cost_usd
            from ${sql.table(`strata.${view}`)} order by 1`.execute(store.db);
        views.set(
          grouping,
          rows.map((r) => ({
            [grouping]: r.g as string,
            calls: Number(r.calls),
            cacheHits: Number(r.cache_hits),
            promptTokens: Number(r.prompt_tokens),
            cachedTokens: Number(r.cached_tokens),
            completionTokens: Number(r.completion_tokens),
            costUsd: trimDecimal(String(r.cost_usd)),
          })),
        );
      }
      const filters: Record<string, [CostGrouping, CostFilter]> = {
        run: ["model", { runId: SEED_RUNS.beta }],
        asset: ["asset", { assetKeys: ["analyses", "summaries"] }],
        model: ["day", { model: "nano" }],
        since7d: ["run", { since: new Date(Date.now() - SEVEN_DAYS_MS) }],
        sinceDate: ["run", { since: new Date("2026-01-01T00:00:00Z") }],
        combined: ["document", { runId: SEED_RUNS.gamma, model: "small" }],
      };
      for (const [name, [grouping, filter]] of Object.entries(filters)) {
        filtered.set(name, jsonRows(await queryCosts(store.db, grouping, filter)));
      }
    });
  }, 120_000);

  afterAll(async () => {
    await project?.dispose();
  });

  const costs = (...args: string[]) => project.cli(["costs", ...args]);

  it(
    "prints every grouping as JSON equal to queryCosts and to the strata.cost_by_* views",
    CLI_TEST_OPTIONS,
    async () => {
      const printed = new Map<CostGrouping, JsonRow[]>();
      const noTotals = (rows: JsonRow[]) => rows.map(({ unpricedCalls: _, total: __, ...r }) => r);
      for (const grouping of COST_GROUPINGS) {
        const all = JSON.parse(ok(await costs("--by", grouping, "--format", "json")));
        const rows = withoutTotal(all as JsonRow[]);
        printed.set(grouping, rows);
        expect(trimmed(rows), grouping).toEqual(expected.get(grouping));
        const view = views.get(grouping);
        if (view !== undefined) expect(noTotals(trimmed(rows)), grouping).toEqual(view);
        // the totals row: every group column null, the sums of every row
        const groups = Object.keys(rows[0] ?? {}).filter((k) => !(k in SEED_EXPECTED.total));
        expect(trimmed([all.at(-1)])[0], grouping).toEqual({
          ...Object.fromEntries(
            groups.filter((g) => g !== "unpricedCalls" && g !== "total").map((g) => [g, null]),
          ),
          ...SEED_EXPECTED.total,
          unpricedCalls: 0,
          total: true,
        });
      }
      // the DESIGN.md shape, and the hand-computed exact numbers
      const byModel = printed.get("model") ?? [];
      expect(Object.keys(byModel[0] ?? {}).sort()).toEqual(
        [
          "cacheHits",
          "cachedTokens",
          "calls",
          "completionTokens",
          "costUsd",
          "model",
          "promptTokens",
          "total",
          "unpricedCalls",
        ].sort(),
      );
      expect(
        Object.fromEntries(byModel.map((r: JsonRow) => [r.model, trimDecimal(String(r.costUsd))])),
      ).toEqual({
        large: SEED_EXPECTED.byModel.large.costUsd,
        nano: SEED_EXPECTED.byModel.nano.costUsd,
        small: SEED_EXPECTED.byModel.small.costUsd,
      });
    },
  );

  it(
    "defaults to --by asset in a table that ends with a totals row summing the exact cost",
    CLI_TEST_OPTIONS,
    async () => {
      const [header, ...rows] = tableCells(ok(await costs()));
      expect(header).toEqual(["asset", "calls", "cache hits", "input", "cached", "output", "cost"]);
      expect(rows.at(-1)).toEqual([
        "total",
        String(SEED_EXPECTED.total.calls),
        String(SEED_EXPECTED.total.cacheHits),
        String(SEED_EXPECTED.total.promptTokens),
        String(SEED_EXPECTED.total.cachedTokens),
        String(SEED_EXPECTED.total.completionTokens),
        `$${SEED_EXPECTED.total.costUsd}`,
      ]);
      // one line per asset before the total, with the views' numbers, in dollars
      expect(rows.slice(0, -1).map((r) => [r[0], r[6]])).toEqual(
        (views.get("asset") ?? []).map((r) => [r.asset, `$${r.costUsd}`]),
      );

      // the document table: asset[partition], document and model; the total blanks the rest
      const [documentHeader, ...documentRows] = tableCells(
        ok(await costs("--by", "document", "--format", "table")),
      );
      expect(documentHeader).toEqual([
        "asset",
        "document",
        "model",
        "calls",
        "input",
        "output",
        "cost",
      ]);
      expect(documentRows[0]).toEqual([
        "analyses[de]",
        "doc3",
        "large",
        "2",
        "600",
        "45",
        "$0.001038",
      ]);
      expect(documentRows.at(-1)).toEqual([
        "total",
        "",
        "",
        String(SEED_EXPECTED.total.calls),
        String(SEED_EXPECTED.total.promptTokens),
        String(SEED_EXPECTED.total.completionTokens),
        `$${SEED_EXPECTED.total.costUsd}`,
      ]);
    },
  );

  it(
    "lists the N most expensive documents with --limit N, and still totals them all",
    CLI_TEST_OPTIONS,
    async () => {
      const documents = expected.get("document") ?? [];
      const json = JSON.parse(
        ok(await costs("--by", "document", "--limit", "2", "--format", "json")),
      );
      expect(trimmed(withoutTotal(json))).toEqual(documents.slice(0, 2));
      const costsOf = documents.map((d) => Number(d.costUsd));
      expect(costsOf).toEqual([...costsOf].sort((a, b) => b - a));
      expect(trimDecimal(String(json.at(-1).costUsd))).toBe(SEED_EXPECTED.total.costUsd);

      const table = ok(await costs("--by", "document", "--limit", "2"));
      const [, ...rows] = tableCells(table.split("\nthe ")[0] ?? "");
      expect(rows.map((r) => r[1])).toEqual(["doc3", "doc1", ""]);
      expect(table).toContain(`the 2 most expensive of ${documents.length} documents`);

      const usage = usageError(await costs("--by", "asset", "--limit", "2"));
      expect(usage).toMatch(/--limit[\s\S]*--by document/);
      expect(usageError(await costs("--by", "document", "--limit", "0"))).toMatch(/--limit/);
    },
  );

  it(
    "says --model takes the model key when given the model name the endpoint serves",
    CLI_TEST_OPTIONS,
    async () => {
      const message = usageError(await costs("--model", "qwen3-8b"));
      expect(message).toContain('"qwen3-8b"');
      expect(message).toContain("--model small");
      expect(message.trim().split("\n")).toHaveLength(1);
      // the key itself works
      expect(
        withoutTotal(JSON.parse(ok(await costs("--model", "small", "--format", "json")))),
      ).not.toEqual([]);
    },
  );

  it(
    "prints CSV with a header and one properly quoted line per row",
    CLI_TEST_OPTIONS,
    async () => {
      const csv = ok(await costs("--by", "document", "--format", "csv"));
      const lines = csv.trimEnd().split("\n");
      const documents = expected.get("document") ?? [];
      expect(lines).toHaveLength(1 + documents.length + 1);
      expect(lines[0]).toBe(
        "asset,partition,document,model,calls,cacheHits,promptTokens,cachedTokens,completionTokens,costUsd,unpricedCalls,total",
      );
      // a quote doubled inside a quoted field; a comma in the document id and the models
      const quotedLine = lines.find((l) => l.startsWith("report,"));
      expect(quotedLine).toMatch(
        /^report,,"d""quoted"", 1","large, small",2,0,20,0,2,[0-9.]+,0,false$/,
      );
      expect(trimDecimal(quotedLine?.split(",").at(-3) ?? "")).toBe("0.0000364");
      // the totals row: group columns empty, total true
      expect(lines.at(-1)).toMatch(
        new RegExp(
          `^,,,,${SEED_EXPECTED.total.calls},${SEED_EXPECTED.total.cacheHits},${SEED_EXPECTED.total.promptTokens},${SEED_EXPECTED.total.cachedTokens},${SEED_EXPECTED.total.completionTokens},[0-9.]+,0,true$`,
        ),
      );
      const records = parseCsv(csv);
      const [header, ...all] = records;
      const body = all.slice(0, -1);
      expect(body).toHaveLength(documents.length);
      const asObjects = body.map((fields) =>
        Object.fromEntries((header ?? []).map((h, i) => [h, fields[i] ?? ""])),
      );
      expect(
        asObjects.map((o) => ({
          ...o,
          costUsd: trimDecimal(o.costUsd ?? ""),
        })),
      ).toEqual(
        documents.map((d) =>
          Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v === null ? "" : String(v)])),
        ),
      );
      expect(asObjects.find((o) => o.document === QUOTED_DOCUMENT)?.model).toBe("large, small");
    },
  );

  it(
    "filters by --run prefix, --asset selection, --model and --since",
    CLI_TEST_OPTIONS,
    async () => {
      const json = async (...args: string[]) =>
        trimmed(withoutTotal(JSON.parse(ok(await costs(...args, "--format", "json")))));

      expect(await json("--by", "model", "--run", "run-b")).toEqual(filtered.get("run"));
      expect(filtered.get("run")?.map((r) => r.model)).toEqual(["nano", "small"]);

      const llm = await json("--by", "asset", "--asset", "group:llm");
      expect(llm).toEqual(filtered.get("asset"));
      expect(llm.map((r) => r.asset)).toEqual(["analyses", "summaries"]);

      const nano = await json("--by", "day", "--model", "nano");
      expect(nano).toEqual(filtered.get("model"));
      expect(nano.map((r) => r.costUsd)).toEqual([
        "0.00000022345678989",
        "0.0000000123456789",
        "0",
      ]);

      const lastWeek = await json("--by", "run", "--since", "7d");
      expect(lastWeek).toEqual(filtered.get("since7d"));
      // ten days ago falls out; only the last hour's calls are left
      expect(lastWeek.map((r) => r.run)).toEqual([SEED_RUNS.beta, SEED_RUNS.gamma]);
      expect(lastWeek[0]?.costUsd).toBe("0");

      const thisYear = await json("--by", "run", "--since", "2026-01-01");
      expect(thisYear).toEqual(filtered.get("sinceDate"));
      // 2025-12-31T23:30Z is before 2026-01-01 (UTC)
      expect(thisYear.map((r) => [r.run, r.costUsd])).toEqual([
        [SEED_RUNS.beta, SEED_EXPECTED.byRun[SEED_RUNS.beta]],
        [SEED_RUNS.gamma, SEED_EXPECTED.byRun[SEED_RUNS.gamma]],
      ]);

      const combined = await json("--by", "document", "--run", SEED_RUNS.gamma, "--model", "small");
      expect(combined).toEqual(filtered.get("combined"));
      // the most expensive document first
      expect(combined.map((r) => [r.asset, r.document, r.costUsd])).toEqual([
        ["report", QUOTED_DOCUMENT, "0.0000014"],
        ["analyses", "doc1", "0"],
      ]);
    },
  );

  it(
    "rejects bad options with exit 2 and a message naming the option",
    CLI_TEST_OPTIONS,
    async () => {
      expect(usageError(await costs("--by", "color"))).toMatch(/--by[\s\S]*color/);
      expect(usageError(await costs("--format", "xml"))).toMatch(/--format[\s\S]*xml/);
      expect(usageError(await costs("--since", "yesterday"))).toMatch(/--since[\s\S]*yesterday/);
      const noRun = usageError(await costs("--run", "nosuchrun"));
      expect(noRun).toMatch(/nosuchrun/);
      expect(noRun.trim().split("\n")).toHaveLength(1);
      const badSelection = usageError(await costs("--asset", "key:a and"));
      // DESIGN.md's own example of a selection error naming the column
      expect(badSelection).toContain('unexpected "and" at column 7 in "key:a and"');
      expect(badSelection.trim().split("\n")).toHaveLength(1);
    },
  );

  it(
    "rejects a --since outside the calendar with exit 2 naming --since, not an unexpected error",
    CLI_TEST_OPTIONS,
    async () => {
      // 999999999 days ago is before the first Date JavaScript can hold
      expect(usageError(await costs("--since", "999999999d"))).toMatch(/--since[\s\S]*999999999d/);
    },
  );

  it(
    "treats SQL-looking --run, --model, --asset and --since as data: the schema survives",
    CLI_TEST_OPTIONS,
    async () => {
      for (const option of ["--run", "--model", "--asset", "--since"]) {
        const result = await costs(option, INJECTION, "--format", "json");
        expect([0, 2], `${option}: ${result.stderr}`).toContain(result.code);
        expect(result.stderr).not.toMatch(/unexpected error|syntax error at or near/i);
        if (option === "--model") expect(withoutTotal(JSON.parse(result.stdout))).toEqual([]);
      }
      // everything is still there, and the CLI still reads it
      await withStore(project, async (store) => {
        const { rows } = await sql<{ calls: number | string; runs: number | string }>`
          select (select count(*) from strata.inference_calls) as calls,
                 (select count(*) from strata.runs) as runs`.execute(store.db);
        expect(rows.map((r) => [Number(r.calls), Number(r.runs)])).toEqual([[16, 3]]);
        expect(jsonRows(await queryCosts(store.db, "model"))).toEqual(expected.get("model"));
      });
    },
  );
});

describe("parseSince", () => {
  const now = Date.parse("2026-11-25T12:00:00Z");

  it.each([
    ["7d", "2026-11-18T12:00:00.000Z"],
    ["24h", "2026-11-24T12:00:00.000Z"],
    ["30m", "2026-11-25T11:30:00.000Z"],
    ["90s", "2026-11-25T11:58:30.000Z"],
    ["2026-01-01", "2026-01-01T00:00:00.000Z"],
    ["2026-11-01T08:00:00+02:00", "2026-11-01T06:00:00.000Z"],
  ])("reads %s as %s (dates are UTC midnight, durations count back from now)", (value, iso) => {
    expect(parseSince(value, now).toISOString()).toBe(iso);
  });

  /** The error parseSince throws for `value`, or undefined when it returns. */
  function errorOf(value: string): unknown {
    try {
      const date = parseSince(value, now);
      return date.getTime(); // returned: no error; show the date it made of `value`
    } catch (error) {
      return error;
    }
  }

  it.each([
    ["yesterday", "a word"],
    ["7", "a number without a unit (Date.parse reads it as 2001-07-01)"],
    ["march 3", "a legacy Date.parse format (read as 2001-03-03)"],
    ["2026-02-30", "a day February does not have (Date.parse rolls it to March 2)"],
    ["2026-13-01", "a thirteenth month"],
    ["999999999d", "a duration reaching before the first representable Date"],
  ])("rejects %s (%s) as bad usage naming --since", (value) => {
    const error = errorOf(value);
    expect(error).toBeInstanceOf(StrataError);
    expect((error as StrataError).code).toBe("bad_usage");
    expect((error as StrataError).message).toContain("--since");
    expect((error as StrataError).message).toContain(value);
  });
});
