import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "./asset-graph.js";
import { type LineageEdge, lineageSubgraph } from "./lineage-subgraph.js";

/**
 * One asset of a {@link LineageJson} export.
 *
 * @example
 * const asset: LineageJsonAsset = lineageToJson(graph, ["analyses"]).assets[0]!;
 * asset.deps; // ["raw/documents"]
 */
export interface LineageJsonAsset {
  readonly key: AssetKey;
  readonly group: string;
  /** Every declared dep of the asset, sorted, including deps outside the selection. */
  readonly deps: ReadonlyArray<AssetKey>;
  readonly description: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly owners: ReadonlyArray<string>;
  readonly kinds: ReadonlyArray<string>;
  readonly codeVersion: string | null;
  /** The partitioning in words (`static [en, de]`, `daily from 2026-01-01`), or null. */
  readonly partitions: string | null;
}

/**
 * What `strata lineage --format json` prints: the selected assets and the edges among them.
 *
 * The shape DESIGN.md fixes (`{ assets: [{ key, group, deps }], edges: [{ from, to }] }`) with the
 * rest of each definition added. `deps` is the asset's full declared deps, so an asset reads the
 * same whatever else is selected; `edges` holds only edges whose both ends are selected, so the
 * edges draw exactly the selected subgraph. A dep outside the selection is therefore in `deps`
 * but in no edge.
 *
 * @example
 * const json: LineageJson = lineageToJson(graph, ["raw/documents", "analyses"]);
 */
export interface LineageJson {
  /** The selected assets, in key order. */
  readonly assets: ReadonlyArray<LineageJsonAsset>;
  /** The edges among selected assets, sorted by `to` then `from`. */
  readonly edges: ReadonlyArray<LineageEdge>;
}

/**
 * Exports the lineage of the selected `keys` as a JSON-able value.
 *
 * Linear in the selection and its edges (100,000 assets take well under a second); the result
 * holds only plain objects, arrays, strings and nulls, so `JSON.stringify` prints it as is.
 * Throws a `bad_selection` error for a key that is not in the graph.
 *
 * @example
 * const out = lineageToJson(graph, graph.keys());
 * console.log(JSON.stringify(out, null, 2));
 */
export function lineageToJson(graph: AssetGraph, keys: Iterable<AssetKey>): LineageJson {
  const sub = lineageSubgraph(graph, keys);
  const assets = sub.keys.map((key): LineageJsonAsset => {
    const a = graph.get(key);
    return {
      key,
      group: a.group,
      // The graph's parents are the declared deps, de-duplicated and sorted (validated projects
      // have no dep outside the graph).
      deps: [...graph.parents(key)],
      description: a.description,
      tags: { ...a.tags },
      owners: [...a.owners],
      kinds: [...a.kinds],
      codeVersion: a.codeVersion,
      partitions: a.partitions === null ? null : a.partitions.describe(),
    };
  });
  return { assets, edges: sub.edges };
}
