import type { AssetDefinition } from "../assets/asset-definition.js";
import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "../lineage/asset-graph.js";
import type { LatestMaterialization } from "../store/materialization-queries.js";

/** Whether an asset (partition) has been materialized and is up to date. */
export type AssetStatus = "missing" | "fresh" | "stale";

/** The status of one partition (or of the whole value of an unpartitioned asset). */
export interface PartitionStatus {
  readonly partitionKey: string | null;
  readonly status: AssetStatus;
  /** Why it is stale, in Dagster's words: `has a new code version`, ... */
  readonly causes: ReadonlyArray<string>;
  readonly materialization: LatestMaterialization | null;
}

/** The status of one asset, summarizing its partitions. */
export interface AssetStatusReport {
  readonly key: AssetKey;
  /** `stale` if any materialized partition is stale, else `missing` if any is missing. */
  readonly status: AssetStatus;
  readonly causes: ReadonlyArray<string>;
  readonly lastMaterializedAt: Date | null;
  readonly partitions: ReadonlyArray<PartitionStatus>;
}

/**
 * Decides `missing`, `fresh` or `stale` for each asset partition, following Dagster's current
 * non-transitive rules: an asset partition is stale when
 * - its code version differs from the one it was built with (`has a new code version`);
 * - a dep it read has a newer materialization than the one it read
 *   (`has a new dependency materialization of "x"`), by the same partition mapping as the
 *   planner: same partitions read the same key, an unpartitioned dep its whole value, an
 *   unpartitioned asset every partition of a partitioned dep;
 * - its deps changed since (`has a new dependency on "x"`, `removed dependency on "x"`).
 * Staleness does not propagate: the child of a stale asset is fresh until the parent is rebuilt.
 *
 * @example
 * const reports = assessAssets(graph, ["analyses"], await latestMaterializations(db));
 */
export function assessAssets(
  graph: AssetGraph,
  keys: Iterable<AssetKey>,
  latest: ReadonlyArray<LatestMaterialization>,
  now: Date = new Date(),
): Map<AssetKey, AssetStatusReport> {
  const index = new LatestIndex(latest);
  const reports = new Map<AssetKey, AssetStatusReport>();
  for (const key of keys) {
    const asset = graph.get(key);
    const partitionKeys: ReadonlyArray<string | null> = asset.partitions?.keys(now) ?? [null];
    const partitions = partitionKeys.map((p) => assessPartition(asset, p, index, graph));
    // Materialized partitions that are no longer in the definition still count as history.
    const stale = partitions.filter((p) => p.status === "stale");
    const status: AssetStatus =
      stale.length > 0
        ? "stale"
        : partitions.some((p) => p.status === "missing")
          ? "missing"
          : "fresh";
    const causes = [...new Set(stale.flatMap((p) => p.causes))];
    let lastMaterializedAt: Date | null = null;
    for (const m of index.all(key)) {
      if (lastMaterializedAt === null || m.finishedAt > lastMaterializedAt)
        lastMaterializedAt = m.finishedAt;
    }
    reports.set(key, { key, status, causes, lastMaterializedAt, partitions });
  }
  return reports;
}

function assessPartition(
  asset: AssetDefinition<object>,
  partitionKey: string | null,
  index: LatestIndex,
  graph: AssetGraph,
): PartitionStatus {
  const m = index.get(asset.key, partitionKey);
  if (m === undefined) {
    return { partitionKey, status: "missing", causes: [], materialization: null };
  }
  const causes: string[] = [];
  if ((asset.codeVersion ?? null) !== m.codeVersion) causes.push("has a new code version");
  const declared = asset.deps.map((d) => d.key);
  const recorded = new Set(m.depKeys);
  for (const dep of declared) {
    if (!recorded.has(dep)) causes.push(`has a new dependency on "${dep}"`);
  }
  const current = new Set(declared);
  for (const dep of m.depKeys) {
    if (!current.has(dep)) causes.push(`removed dependency on "${dep}"`);
  }
  const consumed = new Set(m.inputs.map((i) => i.materializationId));
  for (const dep of declared) {
    if (!recorded.has(dep) || !graph.has(dep)) continue;
    const upstream = upstreamFor(graph.get(dep), asset, partitionKey, index);
    if (upstream.some((u) => !consumed.has(u.id) && u.finishedAt >= m.finishedAt)) {
      causes.push(`has a new dependency materialization of "${dep}"`);
    }
  }
  return {
    partitionKey,
    status: causes.length > 0 ? "stale" : "fresh",
    causes,
    materialization: m,
  };
}

/** The latest materializations of `dep` that a partition of `asset` reads. */
function upstreamFor(
  dep: AssetDefinition<object>,
  asset: AssetDefinition<object>,
  partitionKey: string | null,
  index: LatestIndex,
): ReadonlyArray<LatestMaterialization> {
  if (dep.partitions === null) {
    const m = index.get(dep.key, null);
    return m === undefined ? [] : [m];
  }
  if (asset.partitions === null) return index.all(dep.key);
  const m = index.get(dep.key, partitionKey);
  return m === undefined ? [] : [m];
}

/** Latest materializations by asset key and partition key. */
class LatestIndex {
  readonly #byAsset = new Map<AssetKey, Map<string | null, LatestMaterialization>>();

  constructor(latest: ReadonlyArray<LatestMaterialization>) {
    for (const m of latest) {
      let byPartition = this.#byAsset.get(m.assetKey);
      if (byPartition === undefined) {
        byPartition = new Map();
        this.#byAsset.set(m.assetKey, byPartition);
      }
      byPartition.set(m.partitionKey, m);
    }
  }

  get(key: AssetKey, partitionKey: string | null): LatestMaterialization | undefined {
    return this.#byAsset.get(key)?.get(partitionKey);
  }

  all(key: AssetKey): ReadonlyArray<LatestMaterialization> {
    return [...(this.#byAsset.get(key)?.values() ?? [])];
  }
}
