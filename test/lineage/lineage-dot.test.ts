import { describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { lineageToDot, quoteDot } from "../../src/lineage/lineage-dot.js";

const rows = () => [{ id: "1" }];
const ID = String.raw`"(?:[^"\\]|\\.)*"`;

// raw/documents → analyses, summaries → report, with a group name that needs escaping.
function diamond(): AssetGraph {
  const documents = asset({
    key: "raw/documents",
    group: "ingest",
    description: 'Source "documents"\nfrom S3',
    compute: rows,
  });
  const analyses = asset({ key: "analyses", deps: { documents }, compute: rows });
  const summaries = asset({
    key: "summaries",
    group: String.raw`llm "batch" \ 1`,
    deps: { documents },
    compute: rows,
  });
  const report = asset({ key: "report", deps: { analyses, summaries }, compute: rows });
  return AssetGraph.fromAssets([documents, analyses, summaries, report]);
}

/** Checks the DOT subset the exporter writes: statements one per line, braces balanced. */
function parseDot(text: string): {
  nodes: string[];
  edges: [string, string][];
  clusters: string[];
} {
  const lines = text.split("\n");
  expect(lines[0]).toBe("digraph strata {");
  expect(lines.at(-1)).toBe("}");
  const nodes: string[] = [];
  const edges: [string, string][] = [];
  const clusters: string[] = [];
  // DOT's only escape in a quoted ID is \"; labels also read \\ and \n.
  const unquote = (id: string) =>
    id.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
  const CLUSTER = new RegExp(`^subgraph (${ID}) \\{$`);
  const LABEL = new RegExp(`^label=${ID};$`);
  const EDGE = new RegExp(`^(${ID}) -> (${ID});$`);
  const NODE = new RegExp(`^(${ID})(?: \\[tooltip=${ID}\\])?;$`);
  let depth = 1;
  for (const line of lines.slice(1, -1)) {
    const s = line.trim();
    const cluster = CLUSTER.exec(s);
    const edge = EDGE.exec(s);
    const node = NODE.exec(s);
    if (s === "rankdir=LR;" || s.startsWith("node [") || LABEL.test(s)) continue;
    if (cluster !== null) {
      clusters.push(unquote(cluster[1]!));
      depth++;
    } else if (s === "}") depth--;
    else if (edge !== null) edges.push([unquote(edge[1]!), unquote(edge[2]!)]);
    else if (node !== null) nodes.push(unquote(node[1]!));
    else throw new Error(`not a DOT statement: ${line}`);
    expect(depth).toBeGreaterThan(0);
  }
  expect(depth).toBe(1);
  return { nodes, edges, clusters };
}

describe("lineageToDot", () => {
  it("writes a left-to-right digraph with every selected asset and edge", () => {
    const graph = diamond();
    const dot = lineageToDot(graph, graph.keys());
    expect(dot.split("\n").slice(0, 2)).toEqual(["digraph strata {", "  rankdir=LR;"]);
    const parsed = parseDot(dot);
    expect(parsed.nodes).toEqual(["analyses", "raw/documents", "report", "summaries"]);
    expect(parsed.edges).toEqual(graph.edges().map((e) => [e.from, e.to]));
    expect(dot).toContain(String.raw`"raw/documents" [tooltip="Source \"documents\"\nfrom S3"];`);
  });

  it("draws only edges among the selection", () => {
    const graph = diamond();
    const parsed = parseDot(lineageToDot(graph, ["analyses", "report"]));
    expect(parsed.nodes).toEqual(["analyses", "report"]);
    expect(parsed.edges).toEqual([["analyses", "report"]]);
  });

  it("puts each group in an escaped cluster when asked", () => {
    const graph = diamond();
    const dot = lineageToDot(graph, graph.keys(), { clusters: true });
    const parsed = parseDot(dot);
    expect(parsed.clusters).toEqual([
      "cluster_default",
      "cluster_ingest",
      String.raw`cluster_llm "batch" \ 1`,
    ]);
    expect(parsed.nodes).toEqual(["analyses", "report", "raw/documents", "summaries"]);
    expect(dot).toContain(String.raw`    label="llm \"batch\" \\ 1";`);
    expect(parsed.edges).toHaveLength(4);
  });

  it("writes an empty digraph for an empty selection", () => {
    const graph = diamond();
    expect(parseDot(lineageToDot(graph, []))).toEqual({ nodes: [], edges: [], clusters: [] });
  });
});

describe("quoteDot", () => {
  it("escapes backslashes, quotes and line breaks", () => {
    expect(quoteDot(String.raw`a "b" \c` + "\nd")).toBe(String.raw`"a \"b\" \\c\nd"`);
  });
});
