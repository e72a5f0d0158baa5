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
type JsonRow = Record<string, string | number | null>;

function jsonRows(rows: ReadonlyArray<CostRow>): JsonRow[] {
  return rows.map((r) => ({
    ...r.group,
    calls: r.calls,
    cacheHits: r.cacheHits,
    promptTokens: r.promptTokens,
    cachedTokens: r.cachedTokens,
    completionTokens: r.completionTokens,
    costUsd: trimDecimal(r.costUsd),
  }));
}

function trimmed(rows: JsonRow[]): JsonRow[] {
  return rows.map((r) => ({ ...r, costUsd: trimDecimal(String(r.costUsd)) }));
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

/** The cells of a cli-table3 table line. */
function tableCells(line: string): string[] {
  return line
    .split(/[│|]/)
    .slice(1, -1)
    .map((c) => c.trim());
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
      for (const grouping of COST_GROUPINGS) {
        const rows = JSON.parse(ok(await costs("--by", grouping, "--format", "json")));
        printed.set(grouping, rows);
        expect(trimmed(rows), grouping).toEqual(expected.get(grouping));
        const view = views.get(grouping);
        if (view !== undefined) expect(trimmed(rows), grouping).toEqual(view);
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
      const table = ok(await costs());
      const lines = table.trimEnd().split("\n");
      const header = tableCells(lines.find((l) => l.includes("cost USD")) ?? "");
      expect(header).toEqual([
        "asset",
        "calls",
        "cache hits",
        "prompt",
        "cached",
        "completion",
        "cost USD",
      ]);
      const rows = lines.map(tableCells).filter((c) => c.length === header.length);
      const total = rows.at(-1);
      expect(total).toEqual([
        "total",
        String(SEED_EXPECTED.total.calls),
        String(SEED_EXPECTED.total.cacheHits),
        String(SEED_EXPECTED.total.promptTokens),
        String(SEED_EXPECTED.total.cachedTokens),
        String(SEED_EXPECTED.total.completionTokens),
        expect.any(String),
      ]);
      expect(trimDecimal(total?.[6] ?? "")).toBe(SEED_EXPECTED.total.costUsd);
      // one line per asset before the total, with the views' numbers
      expect(rows.slice(1, -1).map((r) => [r[0], trimDecimal(r[6] ?? "")])).toEqual(
        (views.get("asset") ?? []).map((r) => [r.asset, r.costUsd]),
      );

      // the document grouping has four group columns: the total fills the first, blanks the rest
      const byDocument = ok(await costs("--by", "document", "--format", "table"));
      const documentTotal = byDocument
        .trimEnd()
        .split("\n")
        .map(tableCells)
        .filter((c) => c[0] === "total")
        .at(-1);
      expect(documentTotal).toEqual([
        "total",
        "",
        "",
        "",
        String(SEED_EXPECTED.total.calls),
        String(SEED_EXPECTED.total.cacheHits),
        String(SEED_EXPECTED.total.promptTokens),
        String(SEED_EXPECTED.total.cachedTokens),
        String(SEED_EXPECTED.total.completionTokens),
        expect.any(String),
      ]);
      expect(trimDecimal(documentTotal?.[9] ?? "")).toBe(SEED_EXPECTED.total.costUsd);
    },
  );

  it(
    "prints CSV with a header and one properly quoted line per row",
    CLI_TEST_OPTIONS,
    async () => {
      const csv = ok(await costs("--by", "document", "--format", "csv"));
      const lines = csv.trimEnd().split("\n");
      const documents = expected.get("document") ?? [];
      expect(lines).toHaveLength(1 + documents.length);
      expect(lines[0]).toBe(
        "asset,partition,document,model,calls,cacheHits,promptTokens,cachedTokens,completionTokens,costUsd",
      );
      // a quote doubled inside a quoted field; a comma in the document id and the models
      const quotedLine = lines.find((l) => l.startsWith("report,"));
      expect(quotedLine).toMatch(/^report,,"d""quoted"", 1","large, small",2,0,20,0,2,[0-9.]+$/);
      expect(trimDecimal(quotedLine?.split(",").at(-1) ?? "")).toBe("0.0000364");
      const records = parseCsv(csv);
      const [header, ...body] = records;
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
        trimmed(JSON.parse(ok(await costs(...args, "--format", "json"))));

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
      expect(combined.map((r) => [r.asset, r.document, r.costUsd])).toEqual([
        ["analyses", "doc1", "0"],
        ["report", QUOTED_DOCUMENT, "0.0000014"],
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
        if (option === "--model") expect(JSON.parse(result.stdout)).toEqual([]);
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
