import type { AssetKey } from "../assets/asset-key.js";
import { StrataError } from "../errors.js";
import { closestMatch } from "../util/edit-distance.js";
import { type AssetGraph, compareKeys } from "./asset-graph.js";

/**
 * One edge of the lineage graph: `from` is the dep, `to` the asset that reads it.
 *
 * @example
 * const edge: LineageEdge = { from: "raw/documents", to: "analyses" };
 */
export interface LineageEdge {
  readonly from: AssetKey;
  readonly to: AssetKey;
}

/**
 * The part of an {@link AssetGraph} that a selection covers: what every lineage export prints.
 *
 * `keys` are the selected keys in key order, each once. `edges` are the graph's edges whose both
 * ends are selected (the induced subgraph), sorted by `to` then `from` as
 * {@link AssetGraph.edges} sorts them. Exports print an asset's own attributes in full (its
 * declared deps included) but draw only these edges, so a selection shows exactly its assets.
 *
 * @example
 * const sub = lineageSubgraph(graph, ["raw/documents", "analyses"]);
 * sub.edges; // [{ from: "raw/documents", to: "analyses" }]
 */
export interface LineageSubgraph {
  readonly keys: ReadonlyArray<AssetKey>;
  readonly edges: ReadonlyArray<LineageEdge>;
  /** True when `key` is selected. */
  has(key: AssetKey): boolean;
  /** The selected direct deps of a selected `key`, sorted. */
  parents(key: AssetKey): ReadonlyArray<AssetKey>;
  /** The selected direct dependents of a selected `key`, sorted. */
  children(key: AssetKey): ReadonlyArray<AssetKey>;
}

/**
 * Restricts `graph` to the selected `keys`, in time linear in the selection and its edges.
 *
 * Duplicate keys count once. A key that is not in the graph is a `bad_selection` error naming it:
 * selections are resolved against the same graph, so such a key is a caller's mistake.
 *
 * @example
 * const sub = lineageSubgraph(graph, graph.keys());
 * sub.keys.length === graph.size; // true
 */
export function lineageSubgraph(graph: AssetGraph, keys: Iterable<AssetKey>): LineageSubgraph {
  const selected = new Set<AssetKey>();
  for (const key of keys) {
    if (!graph.has(key)) {
      const hint = closestMatch(key, graph.keys());
      throw new StrataError(
        "bad_selection",
        `asset "${key}" is not in the project` +
          (hint === undefined ? "" : `; did you mean "${hint}"?`),
      );
    }
    selected.add(key);
  }
  // Filtering the graph's cached sorted keys is O(n) for a large selection; sorting the selection
  // is cheaper when it is small.
  const ordered =
    selected.size * 8 < graph.size
      ? [...selected].sort(compareKeys)
      : graph.keys().filter((k) => selected.has(k));
  const everything = selected.size === graph.size;
  const within = (list: ReadonlyArray<AssetKey>): ReadonlyArray<AssetKey> => {
    if (everything) return list;
    for (const k of list) if (!selected.has(k)) return list.filter((n) => selected.has(n));
    return list;
  };
  const edges: LineageEdge[] = [];
  for (const to of ordered) for (const from of within(graph.parents(to))) edges.push({ from, to });
  return {
    keys: ordered,
    edges,
    has: (key) => selected.has(key),
    parents: (key) => within(graph.parents(key)),
    children: (key) => within(graph.children(key)),
  };
}
