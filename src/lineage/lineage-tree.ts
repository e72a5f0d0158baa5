import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "./asset-graph.js";
import { lineageSubgraph } from "./lineage-subgraph.js";

/**
 * Options of {@link lineageToTree}.
 *
 * @example
 * const options: LineageTreeOptions = { color: process.stdout.isTTY };
 */
export interface LineageTreeOptions {
  /** Dim the `[group]` and `(see above)` marks with ANSI escapes; off by default. */
  readonly color?: boolean;
}

const DIM = "\u001b[2m";
const UNDIM = "\u001b[22m";
const MIDDLE = "├── ";
const LAST = "└── ";

/**
 * Prints the lineage of the selected `keys` as an indented tree for a terminal.
 *
 * Each root of the selection (a selected asset with no selected dep) starts a tree; below an
 * asset come the selected assets that read it, in key order, joined by box-drawing characters.
 * An asset reached a second time (a diamond) is printed with `(see above)` and not expanded
 * again, so the output stays linear in the selection's edges. Only edges among selected assets
 * are followed. Each key is followed by its group as `[group]`. The text has no trailing newline
 * and is empty for an empty selection; there is no ANSI escape unless `options.color` is set.
 *
 * @example
 * lineageToTree(graph, graph.keys());
 * // raw/documents [ingest]
 * // ├── analyses [default]
 * // │   └── report [default]
 * // └── summaries [default]
 * //     └── report [default] (see above)
 */
export function lineageToTree(
  graph: AssetGraph,
  keys: Iterable<AssetKey>,
  options: LineageTreeOptions = {},
): string {
  const sub = lineageSubgraph(graph, keys);
  const dim = options.color === true ? (s: string) => DIM + s + UNDIM : (s: string) => s;
  const lines: string[] = [];
  const printed = new Set<AssetKey>();
  // An explicit stack, not recursion: a long chain of assets must not overflow the call stack.
  const stack: { key: AssetKey; prefix: string; connector: string }[] = [];
  const roots = sub.keys.filter((k) => sub.parents(k).length === 0);
  for (let i = roots.length - 1; i >= 0; i--)
    stack.push({ key: roots[i]!, prefix: "", connector: "" });
  while (stack.length > 0) {
    const { key, prefix, connector } = stack.pop()!;
    const label = `${key} ${dim(`[${graph.get(key).group}]`)}`;
    if (printed.has(key)) {
      lines.push(`${prefix}${connector}${label} ${dim("(see above)")}`);
      continue;
    }
    printed.add(key);
    lines.push(`${prefix}${connector}${label}`);
    const childPrefix = connector === "" ? prefix : prefix + (connector === LAST ? "    " : "│   ");
    const children = sub.children(key);
    for (let i = children.length - 1; i >= 0; i--) {
      const last = i === children.length - 1;
      stack.push({ key: children[i]!, prefix: childPrefix, connector: last ? LAST : MIDDLE });
    }
  }
  return lines.join("\n");
}
