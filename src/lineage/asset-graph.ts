import Graph from "graphology";
import type { AssetDefinition } from "../assets/asset-definition.js";
import type { AssetKey } from "../assets/asset-key.js";
import { MinHeap } from "../util/min-heap.js";

// graphology ships CommonJS; its default export is the Graph class with the typed constructors.
const { DirectedGraph } = Graph;
type DirectedGraph = InstanceType<typeof DirectedGraph>;

/**
 * The lineage graph of a validated project: one node per asset key, an edge from each dep to the
 * asset that reads it.
 *
 * Built once per project load. Neighbour lists are sorted by key so that every traversal and the
 * topological order are stable.
 *
 * @example
 * const graph = AssetGraph.fromAssets(project.assets);
 * graph.toposort(); // ["raw/documents", "analyses"]
 */
export class AssetGraph {
  /** The underlying graphology graph; nodes are asset keys. */
  readonly graph: DirectedGraph;
  readonly #assets: ReadonlyMap<AssetKey, AssetDefinition<object>>;
  readonly #parents = new Map<AssetKey, ReadonlyArray<AssetKey>>();
  readonly #children = new Map<AssetKey, ReadonlyArray<AssetKey>>();
  #keys: ReadonlyArray<AssetKey> | undefined;
  #order: ReadonlyArray<AssetKey> | undefined;

  private constructor(
    graph: DirectedGraph,
    assets: ReadonlyMap<AssetKey, AssetDefinition<object>>,
  ) {
    this.graph = graph;
    this.#assets = assets;
  }

  /**
   * Builds the graph from definitions that were validated (unique keys, known deps, no cycle).
   * Deps on keys that are not in `assets` are left out.
   */
  static fromAssets(assets: ReadonlyArray<AssetDefinition<object>>): AssetGraph {
    const graph = new DirectedGraph();
    const byKey = new Map<AssetKey, AssetDefinition<object>>();
    for (const a of assets) {
      byKey.set(a.key, a);
      graph.mergeNode(a.key);
    }
    for (const a of assets) {
      for (const dep of a.deps) {
        if (byKey.has(dep.key)) graph.mergeEdge(dep.key, a.key);
      }
    }
    return new AssetGraph(graph, byKey);
  }

  get size(): number {
    return this.#assets.size;
  }

  has(key: AssetKey): boolean {
    return this.#assets.has(key);
  }

  /** The definition of `key`; throws when it is not in the graph. */
  get(key: AssetKey): AssetDefinition<object> {
    const a = this.#assets.get(key);
    if (a === undefined) throw new RangeError(`asset "${key}" is not in the graph`);
    return a;
  }

  /** Every key, sorted. */
  keys(): ReadonlyArray<AssetKey> {
    this.#keys ??= [...this.#assets.keys()].sort(compareKeys);
    return this.#keys;
  }

  /** Every definition, in key order. */
  assets(): ReadonlyArray<AssetDefinition<object>> {
    return this.keys().map((k) => this.get(k));
  }

  /** Direct deps of `key`, sorted. */
  parents(key: AssetKey): ReadonlyArray<AssetKey> {
    let list = this.#parents.get(key);
    if (list === undefined) {
      list = this.graph.inNeighbors(key).sort(compareKeys);
      this.#parents.set(key, list);
    }
    return list;
  }

  /** Direct dependents of `key`, sorted. */
  children(key: AssetKey): ReadonlyArray<AssetKey> {
    let list = this.#children.get(key);
    if (list === undefined) {
      list = this.graph.outNeighbors(key).sort(compareKeys);
      this.#children.set(key, list);
    }
    return list;
  }

  /** Every edge as `{ from: dep, to: dependent }`, sorted by `to` then `from`. */
  edges(): ReadonlyArray<{ readonly from: AssetKey; readonly to: AssetKey }> {
    const edges: { from: AssetKey; to: AssetKey }[] = [];
    for (const to of this.keys()) for (const from of this.parents(to)) edges.push({ from, to });
    return edges;
  }

  /**
   * A topological order (deps before dependents); among assets ready at the same time, the
   * smaller key comes first, so the order is the same on every load.
   */
  toposort(): ReadonlyArray<AssetKey> {
    if (this.#order !== undefined) return this.#order;
    const indegree = new Map<AssetKey, number>();
    const heap = new MinHeap<AssetKey>(compareKeys);
    for (const key of this.#assets.keys()) {
      const d = this.graph.inDegree(key);
      indegree.set(key, d);
      if (d === 0) heap.push(key);
    }
    const order: AssetKey[] = [];
    while (heap.size > 0) {
      const key = heap.pop();
      order.push(key);
      for (const child of this.graph.outNeighbors(key)) {
        const d = (indegree.get(child) ?? 0) - 1;
        indegree.set(child, d);
        if (d === 0) heap.push(child);
      }
    }
    if (order.length !== this.#assets.size) {
      throw new Error(
        "the asset graph has a cycle; validate the project before building its graph",
      );
    }
    this.#order = order;
    return order;
  }

  /**
   * `keys` and their ancestors up to `depth` levels (all levels when omitted), with the level at
   * which each was reached (0 for the keys themselves).
   */
  upstream(keys: Iterable<AssetKey>, depth = Number.POSITIVE_INFINITY): Map<AssetKey, number> {
    return this.#walk(keys, depth, (k) => this.graph.inNeighbors(k));
  }

  /** `keys` and their descendants up to `depth` levels, as {@link upstream} does downward. */
  downstream(keys: Iterable<AssetKey>, depth = Number.POSITIVE_INFINITY): Map<AssetKey, number> {
    return this.#walk(keys, depth, (k) => this.graph.outNeighbors(k));
  }

  /** Assets with no deps, sorted. */
  roots(): ReadonlyArray<AssetKey> {
    return this.keys().filter((k) => this.graph.inDegree(k) === 0);
  }

  /** Assets nothing depends on, sorted. */
  sinks(): ReadonlyArray<AssetKey> {
    return this.keys().filter((k) => this.graph.outDegree(k) === 0);
  }

  #walk(
    start: Iterable<AssetKey>,
    depth: number,
    next: (key: AssetKey) => ReadonlyArray<AssetKey>,
  ): Map<AssetKey, number> {
    const seen = new Map<AssetKey, number>();
    let frontier: AssetKey[] = [];
    for (const k of start) {
      if (this.#assets.has(k) && !seen.has(k)) {
        seen.set(k, 0);
        frontier.push(k);
      }
    }
    for (let level = 1; level <= depth && frontier.length > 0; level++) {
      const following: AssetKey[] = [];
      for (const k of frontier) {
        for (const n of next(k)) {
          if (!seen.has(n)) {
            seen.set(n, level);
            following.push(n);
          }
        }
      }
      frontier = following;
    }
    return seen;
  }
}

/** Orders keys by code unit, the same in every locale. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
