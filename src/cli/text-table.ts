/** The width a table or a progress line gets when the terminal does not say (or is no terminal). */
export const DEFAULT_OUTPUT_WIDTH = 80;

/** Spaces between two columns. */
const GAP = "  ";

/** How a cell too wide for its column is fitted. */
export type FitMode = "middle" | "end" | "wrap";

/** One column of a {@link renderTable} table. */
export interface TextColumn {
  readonly header: string;
  /** Numbers are right-aligned; the default is left. */
  readonly align?: "left" | "right";
  /**
   * How the column gives way when the table is wider than the output: `middle` shortens a cell
   * as `raw/very…/leaf` (keys, whose start and end both matter), `end` as `01a23b…` (ids, whose
   * prefix is what a command takes), `wrap` breaks it onto more lines (messages, lists). A column
   * without `fit` keeps its full width: numbers are never cut.
   */
  readonly fit?: FitMode;
  /** The narrowest a fitted column becomes (default 12, or its header's length if longer). */
  readonly minWidth?: number;
}

/** What {@link renderTable} draws. */
export interface TextTable {
  readonly columns: ReadonlyArray<TextColumn>;
  /** Cells are strings; a `\n` in a cell starts another line of it. */
  readonly rows: ReadonlyArray<ReadonlyArray<string>>;
  /** Rows after a rule, such as a totals row. */
  readonly footer?: ReadonlyArray<ReadonlyArray<string>>;
  /** The widest the table may be (default {@link DEFAULT_OUTPUT_WIDTH}). */
  readonly maxWidth?: number;
}

/**
 * The width to fit output to on `stream`: its terminal's width, else
 * {@link DEFAULT_OUTPUT_WIDTH} (a pipe or a file, where tools and people still read 80 columns).
 *
 * @example
 * const width = outputWidth(process.stdout);
 */
export function outputWidth(stream: {
  readonly isTTY?: boolean;
  readonly columns?: number;
}): number {
  return stream.isTTY === true && typeof stream.columns === "number" && stream.columns > 0
    ? stream.columns
    : DEFAULT_OUTPUT_WIDTH;
}

/**
 * Draws a plain-text table: a header, a rule, the rows and, after another rule, the footer;
 * columns two spaces apart, no trailing spaces. When the natural table is wider than
 * `maxWidth`, the widest columns that have a `fit` give way first, down to their `minWidth`.
 *
 * @example
 * renderTable({
 *   columns: [{ header: "asset", fit: "middle" }, { header: "cost", align: "right" }],
 *   rows: [["analyses", "$0.14"]],
 * });
 */
export function renderTable(table: TextTable): string {
  const { columns } = table;
  const footer = table.footer ?? [];
  const cellLines = (row: ReadonlyArray<string>) =>
    columns.map((_, i) => (row[i] ?? "").split("\n"));
  const body = table.rows.map(cellLines);
  const foot = footer.map(cellLines);
  const widths = columns.map((column, i) =>
    Math.max(
      column.header.length,
      ...[...body, ...foot].flatMap((row) => row[i]!.map((line) => line.length)),
    ),
  );
  shrink(columns, widths, table.maxWidth ?? DEFAULT_OUTPUT_WIDTH);

  const out: string[] = [];
  const emit = (cells: ReadonlyArray<ReadonlyArray<string>>) => {
    const fitted = cells.map((lines, i) =>
      lines.flatMap((line) => fitText(line, widths[i]!, columns[i]!.fit ?? "end")),
    );
    const height = Math.max(1, ...fitted.map((lines) => lines.length));
    for (let l = 0; l < height; l++) {
      const parts = fitted.map((lines, i) => {
        const text = lines[l] ?? "";
        return columns[i]!.align === "right" ? text.padStart(widths[i]!) : text.padEnd(widths[i]!);
      });
      out.push(parts.join(GAP).trimEnd());
    }
  };
  const rule = () => out.push(widths.map((w) => "─".repeat(w)).join(GAP));
  emit(columns.map((c) => [c.header]));
  rule();
  for (const row of body) emit(row);
  if (foot.length > 0) {
    rule();
    for (const row of foot) emit(row);
  }
  return out.join("\n");
}

/** Narrows the fitted columns, widest first, until the table fits or none can give more. */
function shrink(columns: ReadonlyArray<TextColumn>, widths: number[], maxWidth: number): void {
  const total = () => widths.reduce((t, w) => t + w, 0) + GAP.length * (widths.length - 1);
  const floor = columns.map((c, i) =>
    c.fit === undefined
      ? widths[i]!
      : Math.min(widths[i]!, c.minWidth ?? Math.max(12, c.header.length)),
  );
  let excess = total() - maxWidth;
  while (excess > 0) {
    let widest = -1;
    for (let i = 0; i < widths.length; i++) {
      if (widths[i]! > floor[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
    }
    if (widest < 0) return;
    widths[widest]! -= 1;
    excess -= 1;
  }
}

/**
 * Fits one line of text into `width` characters: unchanged when it fits; else shortened with `…`
 * in the middle or at the end, or wrapped onto several lines (at spaces, `/` or `,` where it
 * can). Returns the lines.
 *
 * @example
 * fitText("raw/very/long/key/leaf", 12, "middle"); // ["raw/ve…/leaf"]
 */
export function fitText(text: string, width: number, mode: FitMode): string[] {
  const chars = [...text];
  if (chars.length <= width) return [text];
  if (width <= 1) return [chars.slice(0, Math.max(0, width)).join("")];
  if (mode === "end") return [`${chars.slice(0, width - 1).join("")}…`];
  if (mode === "middle") {
    const tail = Math.floor((width - 1) / 2);
    const head = width - 1 - tail;
    return [`${chars.slice(0, head).join("")}…${chars.slice(chars.length - tail).join("")}`];
  }
  const lines: string[] = [];
  let rest = chars;
  while (rest.length > width) {
    // break after the last space, "/" or "," that leaves at least half a line
    let cut = width;
    for (let i = width; i > width / 2; i--) {
      if (rest[i - 1] === " " || rest[i - 1] === "/" || rest[i - 1] === ",") {
        cut = i;
        break;
      }
    }
    lines.push(rest.slice(0, cut).join("").trimEnd());
    rest = rest.slice(cut);
    while (rest[0] === " ") rest = rest.slice(1);
  }
  if (rest.length > 0) lines.push(rest.join(""));
  return lines;
}
