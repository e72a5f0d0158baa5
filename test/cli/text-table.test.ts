import { describe, expect, it } from "vitest";
import { fitText, outputWidth, renderTable } from "../../src/cli/text-table.js";

const LONG_KEY = `warehouse/${"customer_support_tickets/".repeat(4)}classified_with_sentiment`;

const widest = (text: string) => Math.max(...text.split("\n").map((l) => [...l].length));

describe("renderTable", () => {
  it("draws a header, a rule, the rows and a footer, numbers right-aligned", () => {
    const table = renderTable({
      columns: [{ header: "asset" }, { header: "calls", align: "right" }],
      rows: [
        ["analyses", "12"],
        ["raw/documents", "3"],
      ],
      footer: [["total", "15"]],
    });
    expect(table.split("\n")).toEqual([
      "asset          calls",
      "─────────────  ─────",
      "analyses          12",
      "raw/documents      3",
      "─────────────  ─────",
      "total             15",
    ]);
  });

  it("shortens a long key in the middle to fit 80 columns, and never cuts a number", () => {
    const table = renderTable({
      columns: [
        { header: "asset", fit: "middle" },
        { header: "input", align: "right" },
        { header: "cost", align: "right" },
      ],
      rows: [[`${LONG_KEY}[en]`, "116434", "$0.137059"]],
    });
    expect(widest(table)).toBe(80);
    const row = table.split("\n")[2]!;
    expect(row).toMatch(/^warehouse\/customer_\S*…\S*_with_sentiment\[en\] +116434 +\$0\.137059$/);
  });

  it("narrows the widest fitted column first and keeps each at its minimum width", () => {
    const table = renderTable({
      columns: [
        { header: "run", fit: "end", minWidth: 13 },
        { header: "selection", fit: "middle" },
        { header: "note", align: "right" },
      ],
      rows: [["01a23b3a-972c-7000-a562-845ad3afe6e1", `key:${LONG_KEY}`, "x".repeat(60)]],
    });
    const [, rule, row] = table.split("\n");
    // 80 columns are not reachable: the numbers keep 60, the others stop at their minimum
    expect(rule!.split("  ").map((r) => r.length)).toEqual([13, 12, 60]);
    expect(row).toMatch(/^01a23b3a-972… {2}key:wa…iment {2}x{60}$/);
  });

  it("wraps a cell of a wrap column onto more lines instead of cutting it", () => {
    const table = renderTable({
      columns: [
        { header: "step", fit: "middle" },
        { header: "error", fit: "wrap", minWidth: 20 },
      ],
      rows: [["analyses", `asset "analyses" failed: ${"the endpoint answered 500 ".repeat(4)}`]],
      maxWidth: 50,
    });
    expect(widest(table)).toBeLessThanOrEqual(50);
    const text = table
      .split("\n")
      .slice(2)
      .map((l) => l.slice(10).trim())
      .join(" ");
    expect(text).toBe(`asset "analyses" failed: ${"the endpoint answered 500 ".repeat(4)}`.trim());
  });

  it("keeps multi-line cells' lines together in their column", () => {
    const table = renderTable({
      columns: [{ header: "asset" }, { header: "status" }],
      rows: [["a", "stale\n  has a new code version"]],
    });
    expect(table.split("\n").slice(2)).toEqual(["a      stale", "         has a new code version"]);
  });
});

describe("fitText", () => {
  it("leaves text that fits, and shortens the rest at the middle or the end", () => {
    expect(fitText("analyses", 8, "middle")).toEqual(["analyses"]);
    expect(fitText("raw/very/long/key/leaf", 12, "middle")).toEqual(["raw/ve…/leaf"]);
    expect(fitText("01a23b3a-972c-7000", 9, "end")).toEqual(["01a23b3a…"]);
  });
});

describe("outputWidth", () => {
  it("is the terminal's width, and 80 for a pipe or a file", () => {
    expect(outputWidth({ isTTY: true, columns: 132 })).toBe(132);
    expect(outputWidth({ isTTY: false, columns: 132 })).toBe(80);
    expect(outputWidth({})).toBe(80);
  });
});
