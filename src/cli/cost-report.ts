import type { CostGrouping, CostRow, CostTotals } from "../store/cost-queries.js";
import { formatUsd } from "../util/usd.js";
import { writeLine } from "./cli-io.js";
import { type FitMode, fitText, outputWidth, renderTable, type TextColumn } from "./text-table.js";

/** The formats of `strata costs --format`. */
export const COST_FORMATS = ["table", "json", "csv"] as const;

/** One of {@link COST_FORMATS}. */
export type CostFormat = (typeof COST_FORMATS)[number];

/** What `strata costs` prints: the rows of one grouping and the totals of every matching row. */
export interface CostReport {
  readonly by: CostGrouping;
  readonly rows: ReadonlyArray<CostRow>;
  readonly totals: CostTotals;
}

/** The group columns of each grouping, in the order JSON and CSV give them. */
const GROUP_COLUMNS: Record<CostGrouping, ReadonlyArray<string>> = {
  asset: ["asset"],
  model: ["model"],
  run: ["run"],
  day: ["day"],
  partition: ["asset", "partition"],
  document: ["asset", "partition", "document", "model"],
};

/** How each group column gives way in a table too wide for the output. */
const GROUP_FIT: Record<string, FitMode> = {
  asset: "middle",
  partition: "end",
  document: "end",
  model: "end",
  run: "end", // a run id's prefix is what `strata runs show` takes
  day: "end",
};

const METRICS = [
  "calls",
  "cacheHits",
  "promptTokens",
  "cachedTokens",
  "completionTokens",
  "costUsd",
  "unpricedCalls",
] as const;

/**
 * Prints a cost report to `stream`. JSON is an array of rows with the group columns and the
 * metrics, each with `total: false`, then one totals row: every group column null,
 * `total: true`. CSV has the same columns and rows, `total` last. The table ends with a totals
 * row and marks the cost of calls whose model had no price as unpriced.
 */
export function printCostReport(
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  report: CostReport,
  format: CostFormat,
): void {
  const groups = GROUP_COLUMNS[report.by];
  const record = (row: CostRow, total: boolean) => ({
    ...Object.fromEntries(groups.map((g) => [g, total ? null : (row.group[g] ?? null)])),
    ...Object.fromEntries(METRICS.map((m) => [m, row[m]])),
    total,
  });
  const records = [...report.rows.map((r) => record(r, false)), record(report.totals, true)];
  if (format === "json") {
    writeLine(stream, JSON.stringify(records));
    return;
  }
  if (format === "csv") {
    const header = [...groups, ...METRICS, "total"];
    writeLine(stream, header.map(csvField).join(","));
    for (const r of records) {
      const values = header.map((h) => (r as Record<string, unknown>)[h]);
      writeLine(stream, values.map((v) => csvField(v === null ? "" : String(v))).join(","));
    }
    return;
  }
  printTable(stream, report);
}

function printTable(
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
  report: CostReport,
): void {
  const { by, rows, totals } = report;
  if (rows.length === 0) {
    writeLine(stream, "no inference calls recorded for this filter");
    return;
  }
  // The document table leaves out cache hits and cached tokens to fit its four group columns in
  // 80 columns; --format json or csv has them.
  const byDocument = by === "document";
  const groups = byDocument ? ["asset", "document", "model"] : GROUP_COLUMNS[by];
  const groupCells = (row: CostRow): string[] =>
    byDocument
      ? [
          row.group.partition == null
            ? (row.group.asset ?? "")
            : `${row.group.asset}[${row.group.partition}]`,
          row.group.document ?? "",
          row.group.model ?? "",
        ]
      : groups.map((g) => row.group[g] ?? "");
  const everyMetric: ReadonlyArray<readonly [string, (r: CostRow) => string]> = [
    ["calls", (r) => String(r.calls)],
    ["cache hits", (r) => String(r.cacheHits)],
    ["input", (r) => String(r.promptTokens)],
    ["cached", (r) => String(r.cachedTokens)],
    ["output", (r) => String(r.completionTokens)],
    ["cost", costCell],
  ];
  const metrics = byDocument
    ? everyMetric.filter(([header]) => header !== "cache hits" && header !== "cached")
    : everyMetric;
  const columns: TextColumn[] = [
    ...groups.map((g) => ({ header: g, fit: GROUP_FIT[g] ?? "end" })),
    ...metrics.map(([header]) => ({ header, align: "right" as const })),
  ];
  const line = (row: CostRow, group: string[]) => [...group, ...metrics.map(([, f]) => f(row))];
  const width = outputWidth(stream);
  const say = (text: string) => {
    for (const l of fitText(text, width, "wrap")) writeLine(stream, l);
  };
  writeLine(
    stream,
    renderTable({
      columns,
      rows: rows.map((r) => line(r, groupCells(r))),
      footer: [line(totals, ["total", ...groups.slice(1).map(() => "")])],
      maxWidth: width,
    }),
  );
  if (totals.groups > rows.length) {
    say(
      `the ${rows.length} most expensive of ${totals.groups} ${by === "document" ? "documents" : "rows"}; the total counts them all`,
    );
  }
  if (totals.unpricedCalls > 0) {
    say(
      `* ${totals.unpricedCalls} call(s) had no price ("unpriced"): their model has no price in the project, so they count as $0; give the model a price: { inputPerMTok, outputPerMTok }`,
    );
  }
}

/** `$0.14`; `unpriced` when no call of the row had a price; `$0.14*` when some had none. */
function costCell(row: CostRow): string {
  if (row.unpricedCalls > 0 && row.unpricedCalls >= row.calls) return "unpriced";
  return `${formatUsd(row.costUsd)}${row.unpricedCalls > 0 ? "*" : ""}`;
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
