import { describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { escapeMermaid, lineageToMermaid } from "../../src/lineage/lineage-mermaid.js";

const rows = () => [{ id: "1" }];

// raw/documents → analyses, summaries → report, with a group name that needs escaping.
function diamond(): AssetGraph {
  const documents = asset({ key: "raw/documents", group: "ingest", compute: rows });
  const analyses = asset({ key: "analyses", deps: { documents }, compute: rows });
  const summaries = asset({
    key: "summaries",
    group: 'llm "batch" #1 <x>',
    deps: { documents },
    compute: rows,
  });
  const report = asset({ key: "my-report/v2", deps: { analyses, summaries }, compute: rows });
  return AssetGraph.fromAssets([documents, analyses, summaries, report]);
}

/** Checks the Mermaid subset the exporter writes and maps node ids back to labels. */
function parseMermaid(text: string): { labels: Map<string, string>; edges: [string, string][] } {
  const lines = text.split("\n");
  expect(lines[0]).toBe("flowchart LR");
  const labels = new Map<string, string>();
  const edges: [string, string][] = [];
  let open = 0;
  for (const line of lines.slice(1)) {
    const s = line.trim();
    const node = /^(n\d+)\["([^"]*)"\]$/.exec(s);
    const edge = /^(n\d+) --> (n\d+)$/.exec(s);
    if (node !== null) {
      expect(labels.has(node[1]!)).toBe(false);
      labels.set(node[1]!, node[2]!);
    } else if (edge !== null) {
      edges.push([edge[1]!, edge[2]!]);
    } else if (/^subgraph g\d+\["[^"]*"\]$/.test(s)) open++;
    else if (s === "end") open--;
    else throw new Error(`not a Mermaid statement: ${line}`);
    expect(open).toBeGreaterThanOrEqual(0);
  }
  expect(open).toBe(0);
  for (const [from, to] of edges) {
    expect(labels.has(from) && labels.has(to)).toBe(true);
  }
  return { labels, edges };
}

describe("lineageToMermaid", () => {
  it("writes a flowchart with safe node ids labelled by key", () => {
    const graph = diamond();
    const text = lineageToMermaid(graph, graph.keys());
    expect(text).toBe(
      [
        "flowchart LR",
        '  n0["analyses"]',
        '  n1["my-report/v2"]',
        '  n2["raw/documents"]',
        '  n3["summaries"]',
        "  n2 --> n0",
        "  n0 --> n1",
        "  n3 --> n1",
        "  n2 --> n3",
      ].join("\n"),
    );
    const { labels, edges } = parseMermaid(text);
    const named = edges.map(([a, b]) => [labels.get(a), labels.get(b)]);
    expect(named).toEqual(graph.edges().map((e) => [e.from, e.to]));
  });

  it("draws only edges among the selection", () => {
    const graph = diamond();
    const { labels, edges } = parseMermaid(lineageToMermaid(graph, ["analyses", "my-report/v2"]));
    expect([...labels.values()]).toEqual(["analyses", "my-report/v2"]);
    expect(edges).toEqual([["n0", "n1"]]);
  });

  it("puts each group in a subgraph with an escaped title when asked", () => {
    const graph = diamond();
    const text = lineageToMermaid(graph, graph.keys(), { subgraphs: true });
    parseMermaid(text);
    expect(text).toContain(
      '  subgraph g2["llm #quot;batch#quot; #35;1 #lt;x#gt;"]\n    n3["summaries"]\n  end',
    );
    expect(text.match(/subgraph/g)).toHaveLength(3);
  });
});

describe("escapeMermaid", () => {
  it("replaces quotes, hashes, angle brackets and line breaks", () => {
    expect(escapeMermaid('say "hi" #1 <b>\nnext')).toBe("say #quot;hi#quot; #35;1 #lt;b#gt; next");
  });
});
