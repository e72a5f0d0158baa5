import { describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { lineageToTree } from "../../src/lineage/lineage-tree.js";

const rows = () => [{ id: "1" }];

// raw/documents → analyses, summaries → report → final: a diamond with a tail.
function diamond(): AssetGraph {
  const documents = asset({ key: "raw/documents", group: "ingest", compute: rows });
  const analyses = asset({ key: "analyses", deps: { documents }, compute: rows });
  const summaries = asset({ key: "summaries", group: "llm", deps: { documents }, compute: rows });
  const report = asset({ key: "report", deps: { analyses, summaries }, compute: rows });
  const final = asset({ key: "final", deps: { report }, compute: rows });
  return AssetGraph.fromAssets([documents, analyses, summaries, report, final]);
}

describe("lineageToTree", () => {
  it("prints a diamond from its root, expanding a shared asset once", () => {
    const graph = diamond();
    expect(lineageToTree(graph, graph.keys())).toBe(
      [
        "raw/documents [ingest]",
        "├── analyses [default]",
        "│   └── report [default]",
        "│       └── final [default]",
        "└── summaries [llm]",
        "    └── report [default] (see above)",
      ].join("\n"),
    );
  });

  it("follows only edges among selected assets and starts a tree at each selected root", () => {
    const graph = diamond();
    expect(lineageToTree(graph, ["summaries", "analyses", "report"])).toBe(
      [
        "analyses [default]",
        "└── report [default]",
        "summaries [llm]",
        "└── report [default] (see above)",
      ].join("\n"),
    );
  });

  it("prints unconnected assets as separate roots and an empty selection as nothing", () => {
    const graph = diamond();
    expect(lineageToTree(graph, ["final", "raw/documents"])).toBe(
      "final [default]\nraw/documents [ingest]",
    );
    expect(lineageToTree(graph, [])).toBe("");
  });

  it("writes no ANSI escape unless asked, and dims the group and the mark when asked", () => {
    const graph = diamond();
    expect(lineageToTree(graph, graph.keys())).not.toContain("\u001b");
    const colored = lineageToTree(graph, graph.keys(), { color: true });
    expect(colored.split("\n")[0]).toBe("raw/documents \u001b[2m[ingest]\u001b[22m");
    expect(colored).toContain("report \u001b[2m[default]\u001b[22m \u001b[2m(see above)\u001b[22m");
    // Without the escapes the text is the plain tree.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes on purpose
    expect(colored.replace(/\u001b\[\d+m/g, "")).toBe(lineageToTree(graph, graph.keys()));
  });

  it("stays linear on a ladder of diamonds instead of exploding exponentially", () => {
    // 30 stacked diamonds have 2^30 root-to-sink paths; each asset must print at most
    // as many times as it has selected parents.
    const assets = [asset({ key: "d0", compute: rows })];
    for (let i = 1; i <= 30; i++) {
      const top = `d${i - 1}`;
      const left = asset({ key: `l${i}`, deps: { top }, compute: rows });
      const right = asset({ key: `r${i}`, deps: { top }, compute: rows });
      assets.push(left, right, asset({ key: `d${i}`, deps: { left, right }, compute: rows }));
    }
    const graph = AssetGraph.fromAssets(assets);
    const lines = lineageToTree(graph, graph.keys()).split("\n");
    expect(lines).toHaveLength(graph.edges().length + 1);
    expect(lines.filter((l) => !l.endsWith("(see above)"))).toHaveLength(graph.size);
  });
});
