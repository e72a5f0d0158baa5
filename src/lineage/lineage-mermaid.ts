import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "./asset-graph.js";
import { lineageSubgraph } from "./lineage-subgraph.js";

/**
 * Options of {@link lineageToMermaid}.
 *
 * @example
 * const options: LineageMermaidOptions = { subgraphs: true };
 */
export interface LineageMermaidOptions {
  /** Draw each group as a Mermaid `subgraph` titled with the group; off by default. */
  readonly subgraphs?: boolean;
}

/**
 * Prints the lineage of the selected `keys` as a Mermaid `flowchart LR`.
 *
 * Asset keys contain `/` and `-`, which Mermaid does not take in node ids, so nodes get the ids
 * `n0`, `n1`, ... in key order and show the key as a quoted label (escaped with Mermaid's entity
 * codes). Edges run from a dep to the asset that reads it and join only selected assets. With
 * `subgraphs`, groups become subgraphs `g0`, `g1`, ... in group order. The text has no trailing
 * newline; paste it into a fenced `mermaid` block.
 *
 * @example
 * lineageToMermaid(graph, ["raw/documents", "analyses"]);
 * // flowchart LR
 * //   n0["analyses"]
 * //   n1["raw/documents"]
 * //   n1 --> n0
 */
export function lineageToMermaid(
  graph: AssetGraph,
  keys: Iterable<AssetKey>,
  options: LineageMermaidOptions = {},
): string {
  const sub = lineageSubgraph(graph, keys);
  const ids = new Map<AssetKey, string>();
  for (const key of sub.keys) ids.set(key, `n${ids.size}`);
  const node = (key: AssetKey): string => `${ids.get(key)}["${escapeMermaid(key)}"]`;
  const lines = ["flowchart LR"];
  if (options.subgraphs === true) {
    const byGroup = new Map<string, AssetKey[]>();
    for (const key of sub.keys) {
      const group = graph.get(key).group;
      const members = byGroup.get(group);
      if (members === undefined) byGroup.set(group, [key]);
      else members.push(key);
    }
    [...byGroup.keys()].sort().forEach((group, i) => {
      lines.push(`  subgraph g${i}["${escapeMermaid(group)}"]`);
      for (const key of byGroup.get(group)!) lines.push(`    ${node(key)}`);
      lines.push("  end");
    });
  } else {
    for (const key of sub.keys) lines.push(`  ${node(key)}`);
  }
  for (const { from, to } of sub.edges) lines.push(`  ${ids.get(from)} --> ${ids.get(to)}`);
  return lines.join("\n");
}

/**
 * Escapes `text` for a double-quoted Mermaid label: `"`, `#`, `<` and `>` become entity codes and
 * line breaks become spaces.
 *
 * @example
 * escapeMermaid('a "b"'); // "a #quot;b#quot;"
 */
export function escapeMermaid(text: string): string {
  return text.replace(/["#<>]|\r\n|\r|\n/g, (c) => MERMAID_ENTITIES[c] ?? " ");
}

const MERMAID_ENTITIES: Readonly<Record<string, string>> = {
  '"': "#quot;",
  "#": "#35;",
  "<": "#lt;",
  ">": "#gt;",
};
