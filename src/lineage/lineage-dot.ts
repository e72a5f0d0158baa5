import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "./asset-graph.js";
import { lineageSubgraph } from "./lineage-subgraph.js";

/**
 * Options of {@link lineageToDot}.
 *
 * @example
 * const options: LineageDotOptions = { clusters: true };
 */
export interface LineageDotOptions {
  /** Draw each group as a `cluster_<group>` subgraph with the group as its label; off by default. */
  readonly clusters?: boolean;
}

/**
 * Prints the lineage of the selected `keys` as a Graphviz DOT digraph, left to right.
 *
 * Nodes are the selected asset keys as quoted IDs (escaped, so any key or group is safe), with
 * the asset's description as tooltip; edges run from a dep to the asset that reads it and join
 * only selected assets. Nodes and edges come in key order, so the same selection always prints
 * the same text. The text has no trailing newline. Render it with `dot -Tsvg`.
 *
 * @example
 * lineageToDot(graph, ["raw/documents", "analyses"]);
 * // digraph strata {
 * //   rankdir=LR;
 * //   node [shape=box, style=rounded];
 * //   "analyses";
 * //   "raw/documents" [tooltip="Source documents"];
 * //   "raw/documents" -> "analyses";
 * // }
 */
export function lineageToDot(
  graph: AssetGraph,
  keys: Iterable<AssetKey>,
  options: LineageDotOptions = {},
): string {
  const sub = lineageSubgraph(graph, keys);
  const lines = ["digraph strata {", "  rankdir=LR;", "  node [shape=box, style=rounded];"];
  const node = (key: AssetKey): string => {
    const description = graph.get(key).description;
    return description === null || description === ""
      ? `${quoteDot(key)};`
      : `${quoteDot(key)} [tooltip=${quoteDot(description)}];`;
  };
  if (options.clusters === true) {
    const byGroup = new Map<string, AssetKey[]>();
    for (const key of sub.keys) {
      const group = graph.get(key).group;
      const members = byGroup.get(group);
      if (members === undefined) byGroup.set(group, [key]);
      else members.push(key);
    }
    for (const group of [...byGroup.keys()].sort()) {
      lines.push(`  subgraph ${quoteDot(`cluster_${group}`)} {`, `    label=${quoteDot(group)};`);
      for (const key of byGroup.get(group)!) lines.push(`    ${node(key)}`);
      lines.push("  }");
    }
  } else {
    for (const key of sub.keys) lines.push(`  ${node(key)}`);
  }
  for (const { from, to } of sub.edges) lines.push(`  ${quoteDot(from)} -> ${quoteDot(to)};`);
  lines.push("}");
  return lines.join("\n");
}

/**
 * Quotes `text` as a DOT ID: backslashes and double quotes are escaped, line breaks become `\n`.
 *
 * @example
 * quoteDot('say "hi"'); // "\"say \\\"hi\\\"\""
 */
export function quoteDot(text: string): string {
  return `"${text
    .replace(/\\/g, "\\\\")
    .replace(/"/g, '\\"')
    .replace(/\r\n|\r|\n/g, "\\n")}"`;
}
