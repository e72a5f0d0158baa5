import type { AssetDefinition } from "../assets/asset-definition.js";
import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "./asset-graph.js";

/**
 * The graph in the shape selections are evaluated on: assets numbered in key order, edges as
 * compressed adjacency arrays, attribute values as postings. Built once per graph, so that a
 * hundred selections on a large graph each cost a few linear passes over typed arrays.
 *
 * Internal to the selection evaluator; not part of the public API.
 *
 * @example
 * const { keys, ids } = selectionIndexOf(graph);
 * keys[ids.get("raw/documents")!]; // "raw/documents"
 */
export interface SelectionIndex {
  readonly keys: ReadonlyArray<AssetKey>;
  readonly ids: ReadonlyMap<AssetKey, number>;
  readonly assets: ReadonlyArray<AssetDefinition<object>>;
  readonly parents: Adjacency;
  readonly children: Adjacency;
  /** Filled lazily: only the attributes that selections use are ever indexed. */
  readonly postings: Map<PostedAttribute, Postings>;
}

/**
 * The attributes that have postings.
 *
 * @example
 * const attribute: PostedAttribute = "owner";
 */
export type PostedAttribute = "group" | "owner" | "kind" | "tag";

/**
 * Asset ids by attribute value; `none` holds the assets with no value (what `<null>` selects).
 *
 * @example
 * postingsOf(index, "kind").byValue.get("python"); // ids of the assets of kind "python"
 */
export interface Postings {
  readonly byValue: ReadonlyMap<string, ReadonlyArray<number>>;
  readonly none: ReadonlyArray<number>;
}

/**
 * Compressed adjacency: the neighbours of asset `i` are `targets[offsets[i]]` up to
 * `targets[offsets[i + 1]]`.
 *
 * @example
 * const { offsets, targets } = selectionIndexOf(graph).children;
 * const firstChildren = targets.subarray(offsets[0], offsets[1]);
 */
export interface Adjacency {
  readonly offsets: Int32Array;
  readonly targets: Int32Array;
}

const INDEXES = new WeakMap<AssetGraph, SelectionIndex>();

/**
 * The selection index of `graph`, built on first use and kept for as long as the graph lives.
 *
 * @example
 * const index = selectionIndexOf(graph);
 * index.keys[0]; // the smallest key
 */
export function selectionIndexOf(graph: AssetGraph): SelectionIndex {
  let index = INDEXES.get(graph);
  if (index === undefined) {
    index = buildIndex(graph);
    INDEXES.set(graph, index);
  }
  return index;
}

function buildIndex(graph: AssetGraph): SelectionIndex {
  const keys = graph.keys();
  const ids = new Map<AssetKey, number>(keys.map((key, i) => [key, i]));
  const assets = keys.map((key) => graph.get(key));
  const sources: number[] = [];
  const sinks: number[] = [];
  graph.graph.forEachEdge((_edge, _attributes, source, target) => {
    const from = ids.get(source);
    const to = ids.get(target);
    if (from !== undefined && to !== undefined) {
      sources.push(from);
      sinks.push(to);
    }
  });
  return {
    keys,
    ids,
    assets,
    parents: adjacency(keys.length, sinks, sources),
    children: adjacency(keys.length, sources, sinks),
    postings: new Map(),
  };
}

/** Compressed adjacency from each `from[e]` to `to[e]`. */
function adjacency(n: number, from: ReadonlyArray<number>, to: ReadonlyArray<number>): Adjacency {
  const offsets = new Int32Array(n + 1);
  for (const f of from) offsets[f + 1] = offsets[f + 1]! + 1;
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i + 1]! + offsets[i]!;
  const next = offsets.slice(0, n);
  const targets = new Int32Array(from.length);
  for (let e = 0; e < from.length; e++) {
    const f = from[e]!;
    targets[next[f]!] = to[e]!;
    next[f] = next[f]! + 1;
  }
  return { offsets, targets };
}

/**
 * The postings of one attribute, built on first use and kept with the graph's index.
 *
 * @example
 * postingsOf(selectionIndexOf(graph), "owner").none; // ids of the assets with no owners
 */
export function postingsOf(index: SelectionIndex, attribute: PostedAttribute): Postings {
  const cached = index.postings.get(attribute);
  if (cached !== undefined) return cached;
  const byValue = new Map<string, number[]>();
  const none: number[] = [];
  index.assets.forEach((asset, id) => {
    const values = valuesOf(asset, attribute);
    if (values.length === 0) none.push(id);
    for (const value of values) {
      const ids = byValue.get(value);
      if (ids === undefined) byValue.set(value, [id]);
      else if (ids[ids.length - 1] !== id) ids.push(id);
    }
  });
  const postings: Postings = { byValue, none };
  index.postings.set(attribute, postings);
  return postings;
}

function valuesOf(
  asset: AssetDefinition<object>,
  attribute: PostedAttribute,
): ReadonlyArray<string> {
  switch (attribute) {
    case "group":
      // Every asset has a group (DEFAULT_GROUP when none is named); only "" counts as none.
      return asset.group === "" ? [] : [asset.group];
    case "owner":
      return asset.owners;
    case "kind":
      return asset.kinds;
    case "tag":
      return Object.entries(asset.tags).map(([key, value]) => tagPosting(key, value));
  }
}

/**
 * The postings key of one tag pair; the length prefix keeps `a=b` + `c` apart from `a` + `b=c`.
 *
 * @example
 * postingsOf(index, "tag").byValue.get(tagPosting("tier", "gold"));
 */
export function tagPosting(key: string, value: string): string {
  return `${key.length}:${key}=${value}`;
}
