import { describe, expect, it } from "vitest";
import { type AssetSpec, asset, type DepsSpec } from "../../src/assets/asset-definition.js";
import { SelectionSyntaxError } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { evaluateSelection, selectAssets } from "../../src/lineage/selection-evaluator.js";
import { parseSelection } from "../../src/lineage/selection-parser.js";

type Spec = Omit<AssetSpec<object, DepsSpec>, "compute" | "deps"> & { deps?: string[] };

function graphOf(specs: ReadonlyArray<Spec>): AssetGraph {
  return AssetGraph.fromAssets(
    specs.map(({ deps = [], ...spec }) =>
      asset({
        ...spec,
        deps: Object.fromEntries(deps.map((key, i) => [`d${i}`, key])),
        compute: () => [],
      }),
    ),
  );
}

/**
 * raw/documents ─▶ clean/documents ─┐
 *                                    ├─▶ analyses ─▶ report
 * raw/users ─────▶ clean/users ─────┘
 */
const project = graphOf([
  {
    key: "raw/documents",
    group: "raw",
    owners: ["team:data"],
    kinds: ["s3"],
    tags: { pii: "" },
  },
  {
    key: "raw/users",
    group: "raw",
    owners: ["alice@example.com"],
    kinds: ["postgres"],
    tags: { pii: "", tier: "gold" },
  },
  {
    key: "clean/documents",
    group: "clean",
    kinds: ["python"],
    tags: { tier: "gold" },
    deps: ["raw/documents"],
  },
  { key: "clean/users", group: "clean", tags: { tier: "silver" }, deps: ["raw/users"] },
  {
    key: "analyses",
    group: "mart",
    owners: ["team:ml"],
    kinds: ["openai", "python"],
    deps: ["clean/documents", "clean/users"],
  },
  { key: "report", group: "mart", deps: ["analyses"] },
]);

/** top ─▶ left ─▶ bottom, top ─▶ right ─▶ bottom */
const diamond = graphOf([
  { key: "top" },
  { key: "left", deps: ["top"] },
  { key: "right", deps: ["top"] },
  { key: "bottom", deps: ["left", "right"] },
]);

/** c1 ─▶ c2 ─▶ c3 ─▶ c4 ─▶ c5 */
const chain = graphOf([
  { key: "c1" },
  { key: "c2", deps: ["c1"] },
  { key: "c3", deps: ["c2"] },
  { key: "c4", deps: ["c3"] },
  { key: "c5", deps: ["c4"] },
]);

const GRAPHS = { project, diamond, chain } as const;

const RAW = ["raw/documents", "raw/users"];
const ALL_PROJECT = [...project.keys()];

/** Each selection, the graph it runs on and the keys it selects, sorted. */
const SELECTS: ReadonlyArray<readonly [string, keyof typeof GRAPHS, ReadonlyArray<string>]> = [
  // every asset, exact keys and bare keys
  ["*", "project", ALL_PROJECT],
  ["key:analyses", "project", ["analyses"]],
  ['key:"raw/users"', "project", ["raw/users"]],
  ["raw/users", "project", ["raw/users"]],
  ["key:raw", "project", []],
  ["key:nope", "project", []],
  // wildcards
  ["key:raw/*", "project", RAW],
  ["raw/*", "project", RAW],
  ['key:"*documents"', "project", ["clean/documents", "raw/documents"]],
  ["key:*/users", "project", ["clean/users", "raw/users"]],
  ["key:r*", "project", ["raw/documents", "raw/users", "report"]],
  ["key:*", "project", ALL_PROJECT],
  ["group:c*", "project", ["clean/documents", "clean/users"]],
  // attributes
  ["group:raw", "project", RAW],
  ["group:mart", "project", ["analyses", "report"]],
  ["group:<null>", "project", []],
  ["tag:pii", "project", RAW],
  ["tag:tier", "project", []],
  ["tag:tier=gold", "project", ["clean/documents", "raw/users"]],
  ['tag:"tier"="silver"', "project", ["clean/users"]],
  ["tag:pii=<null>", "project", RAW],
  ["tag:<null>", "project", ["analyses", "report"]],
  ["tag:<null>=gold", "project", []],
  ["tag:constructor", "project", []],
  ['owner:"alice@example.com"', "project", ["raw/users"]],
  ['owner:"team:ml"', "project", ["analyses"]],
  ["owner:<null>", "project", ["clean/documents", "clean/users", "report"]],
  ["kind:python", "project", ["analyses", "clean/documents"]],
  ["kind:<null>", "project", ["clean/users", "report"]],
  // boolean operators and precedence
  ["key:report or group:raw and kind:s3", "project", ["raw/documents", "report"]],
  ["(key:report or group:raw) and kind:s3", "project", ["raw/documents"]],
  ["not group:raw and not group:clean", "project", ["analyses", "report"]],
  ["not (group:raw or group:clean)", "project", ["analyses", "report"]],
  ["not group:raw or group:raw", "project", ALL_PROJECT],
  [
    "NOT group:mart AND tag:tier=gold OR key:report",
    "project",
    ["clean/documents", "raw/users", "report"],
  ],
  ["not *", "project", []],
  // traversals on the project
  ["raw/documents+", "project", ["analyses", "clean/documents", "raw/documents", "report"]],
  ["+key:clean/users", "project", ["clean/users", "raw/users"]],
  ["+key:analyses and group:raw", "project", RAW],
  ["key:raw/users+2", "project", ["analyses", "clean/users", "raw/users"]],
  ["+group:clean+", "project", ALL_PROJECT],
  ["not +key:clean/users", "project", ["analyses", "clean/documents", "raw/documents", "report"]],
  // traversal depths on a diamond
  ["1+key:bottom", "diamond", ["bottom", "left", "right"]],
  ["2+key:bottom", "diamond", ["bottom", "left", "right", "top"]],
  ["+key:bottom", "diamond", ["bottom", "left", "right", "top"]],
  ["key:top+1", "diamond", ["left", "right", "top"]],
  ["key:top+", "diamond", ["bottom", "left", "right", "top"]],
  ["1+key:left+1", "diamond", ["bottom", "left", "top"]],
  ["0+key:left+0", "diamond", ["left"]],
  ["+key:left", "diamond", ["left", "top"]],
  // traversal depths on a chain
  ["2+key:c4", "chain", ["c2", "c3", "c4"]],
  ["key:c2+2", "chain", ["c2", "c3", "c4"]],
  ["1+key:c3+1", "chain", ["c2", "c3", "c4"]],
  ["+key:c3", "chain", ["c1", "c2", "c3"]],
  ["key:c3+", "chain", ["c3", "c4", "c5"]],
  ["2+key:c3+", "chain", ["c1", "c2", "c3", "c4", "c5"]],
  ["key:c1+99", "chain", ["c1", "c2", "c3", "c4", "c5"]],
  ["1+(key:c1 or key:c5)", "chain", ["c1", "c4", "c5"]],
  // sinks and roots, looking through assets outside the set
  ["sinks(*)", "diamond", ["bottom"]],
  ["roots(*)", "diamond", ["top"]],
  ["sinks(key:left or key:right)", "diamond", ["left", "right"]],
  ["sinks(key:top or key:bottom)", "diamond", ["bottom"]],
  ["roots(key:top or key:bottom)", "diamond", ["top"]],
  ["sinks(key:c1 or key:c3)", "chain", ["c3"]],
  ["roots(key:c1 or key:c3)", "chain", ["c1"]],
  ["sinks(key:c2 or key:c5)", "chain", ["c5"]],
  ["roots(key:c2 or key:c5)", "chain", ["c2"]],
  ["sinks(group:raw)", "project", RAW],
  ["sinks(group:raw or key:report)", "project", ["report"]],
  ["roots(group:clean+)", "project", ["clean/documents", "clean/users"]],
  ["sinks(+key:analyses)", "project", ["analyses"]],
  [
    "Roots(key:report or key:raw/users or key:clean/documents)",
    "project",
    ["clean/documents", "raw/users"],
  ],
  [
    "+sinks(group:clean)",
    "project",
    ["clean/documents", "clean/users", "raw/documents", "raw/users"],
  ],
  ["roots(not group:raw)", "project", ["clean/documents", "clean/users"]],
  ["sinks(key:nope)", "project", []],
];

describe("selectAssets", () => {
  it.each(SELECTS)("selects with %j on the %s graph", (selection, graph, expected) => {
    expect(selectAssets(selection, GRAPHS[graph])).toEqual(expected);
  });

  it("throws a bad_selection error for a selection that does not parse", () => {
    expect(() => selectAssets("key:a and", project)).toThrow(SelectionSyntaxError);
    expect(() => selectAssets("color:red", project)).toThrow(
      expect.objectContaining({ code: "bad_selection", column: 1 }),
    );
  });

  it("returns an empty list, not an error, when a valid selection matches nothing", () => {
    expect(selectAssets("group:none", project)).toEqual([]);
  });

  it("evaluates a generated chain of 100k terms joined by or, and by and", () => {
    const misses = Array.from({ length: 100_000 }, (_, i) => `key:nope${i}`);
    const anyOf = [...misses.slice(0, 50_000), "key:report", ...misses.slice(50_000)];
    expect(selectAssets(anyOf.join(" or "), project)).toEqual(["report"]);
    const allOf = Array.from({ length: 100_000 }, (_, i) => (i % 2 ? "group:raw" : "tag:pii"));
    expect(selectAssets(allOf.join(" and "), project)).toEqual(RAW);
    expect(selectAssets(`${allOf.join(" and ")} and key:report`, project)).toEqual([]);
  });
});

describe("evaluateSelection", () => {
  it("returns the selected keys as a set", () => {
    const keys = evaluateSelection(parseSelection("+key:clean/users"), project);
    expect(keys).toEqual(new Set(["clean/users", "raw/users"]));
  });

  it("evaluates the same tree against different graphs", () => {
    const ast = parseSelection("sinks(*)");
    expect([...evaluateSelection(ast, diamond)]).toEqual(["bottom"]);
    expect([...evaluateSelection(ast, chain)]).toEqual(["c5"]);
  });
});
