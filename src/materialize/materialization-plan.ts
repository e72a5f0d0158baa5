import type { AssetDefinition } from "../assets/asset-definition.js";
import type { AssetKey } from "../assets/asset-key.js";
import type { PartitionsDefinition } from "../assets/partitions.js";
import { StrataError } from "../errors.js";
import type { AssetGraph } from "../lineage/asset-graph.js";
import { selectAssets } from "../lineage/selection-evaluator.js";
import { quoteSelection } from "../lineage/selection-tokenizer.js";
import { closestMatch } from "../util/edit-distance.js";

/**
 * The most partition keys one run builds. A run records each step as it goes, so a range of
 * decades of hourly partitions is refused up front with a way to split it, not left to run for
 * hours in one process.
 */
export const MAX_RUN_PARTITIONS = 10_000;

/** Which partitions of a dep a step reads. */
export type InputPartitions =
  /** The dep is unpartitioned: its whole value. */
  | { readonly kind: "whole" }
  /** Same partitions on both sides: the step's own partition key. */
  | { readonly kind: "same"; readonly partitionKey: string }
  /** An unpartitioned step reading a partitioned dep: every materialized partition. */
  | { readonly kind: "all" };

/** One input of a step: the `deps` property name, the dep's key and the partitions read. */
export interface PlannedInput {
  readonly name: string;
  readonly assetKey: AssetKey;
  readonly partitions: InputPartitions;
}

/** One asset partition to build. */
export interface PlanStep {
  /** `key` for an unpartitioned asset, `key[partition]` otherwise; unique in the plan. */
  readonly id: string;
  readonly assetKey: AssetKey;
  readonly partitionKey: string | null;
  readonly codeVersion: string | null;
  readonly inputs: ReadonlyArray<PlannedInput>;
  /** Steps of this plan that must succeed before this one starts. */
  readonly upstreamSteps: ReadonlyArray<string>;
}

/**
 * The steps of a materialization: the selected assets in topological order, each with the
 * partitions to build and the upstream materializations it will read.
 */
export interface MaterializationPlan {
  readonly selection: string;
  readonly partitionKeys: ReadonlyArray<string>;
  readonly steps: ReadonlyArray<PlanStep>;
}

/** What to materialize. */
export interface PlanRequest {
  readonly selection: string;
  /** `--partition` keys. */
  readonly partitions?: ReadonlyArray<string>;
  /** `--partition-range A..B`. */
  readonly partitionRange?: string;
  /**
   * `--all-partitions`: every partition that exists now, for selections whose partitioned
   * assets share one partitioning; an unpartitioned selection ignores it.
   */
  readonly allPartitions?: boolean;
  readonly now?: Date;
}

/**
 * Resolves a selection and partition keys into a plan; an empty selection, a partitioned asset
 * without partitions and an unknown partition key are `StrataError`s that say how to fix them.
 *
 * @example
 * const plan = planMaterialization(graph, { selection: "raw/documents+" });
 */
export function planMaterialization(graph: AssetGraph, request: PlanRequest): MaterializationPlan {
  const selected = selectAssets(request.selection, graph);
  if (selected.length === 0) {
    throw new StrataError(
      "empty_selection",
      `selection ${quoteSelection(request.selection, 1)} matches no asset; see "strata list" for the keys`,
    );
  }
  const inPlan = new Set(selected);
  const ordered = graph.toposort().filter((k) => inPlan.has(k));
  const partitioned = ordered.map((k) => graph.get(k)).filter((a) => a.partitions !== null);
  const partitionKeys = resolvePartitionKeys(partitioned, request);
  const steps = buildSteps(graph, ordered, (asset) =>
    asset.partitions === null ? [null] : partitionKeys,
  );
  return { selection: request.selection, partitionKeys, steps };
}

/**
 * The plan of exactly `steps` (asset partitions of `graph`, e.g. those a run recorded), in
 * dependency order: what `strata runs resume` replays. Every asset must be in the graph.
 *
 * @example
 * const plan = planSteps(graph, { selection: "*", partitionKeys: [], steps: [{ assetKey: "a", partitionKey: null }] });
 */
export function planSteps(
  graph: AssetGraph,
  request: {
    readonly selection: string;
    readonly partitionKeys: ReadonlyArray<string>;
    readonly steps: ReadonlyArray<{
      readonly assetKey: AssetKey;
      readonly partitionKey: string | null;
    }>;
  },
): MaterializationPlan {
  const partitionsOf = new Map<AssetKey, Array<string | null>>();
  for (const s of request.steps) {
    const keys = partitionsOf.get(s.assetKey) ?? [];
    if (!keys.includes(s.partitionKey)) keys.push(s.partitionKey);
    partitionsOf.set(s.assetKey, keys);
  }
  const ordered = graph.toposort().filter((k) => partitionsOf.has(k));
  const steps = buildSteps(graph, ordered, (asset) => partitionsOf.get(asset.key) ?? []);
  return { selection: request.selection, partitionKeys: request.partitionKeys, steps };
}

/** The steps of `ordered` (keys in dependency order), each asset for its partition keys. */
function buildSteps(
  graph: AssetGraph,
  ordered: ReadonlyArray<AssetKey>,
  partitionsOf: (asset: AssetDefinition<object>) => ReadonlyArray<string | null>,
): PlanStep[] {
  const steps: PlanStep[] = [];
  const stepsOf = new Map<AssetKey, string[]>();
  const planned = new Set<string>();
  for (const key of ordered) {
    const asset = graph.get(key);
    const keys = partitionsOf(asset);
    const ids: string[] = [];
    for (const partitionKey of keys) {
      const inputs = asset.deps.map((dep) => plannedInput(asset, dep, partitionKey, graph));
      const upstream: string[] = [];
      for (const input of inputs) {
        const depSteps = stepsOf.get(input.assetKey) ?? [];
        if (input.partitions.kind === "same") {
          const id = stepId(input.assetKey, input.partitions.partitionKey);
          if (planned.has(id)) upstream.push(id);
        } else {
          upstream.push(...depSteps);
        }
      }
      const id = stepId(key, partitionKey);
      ids.push(id);
      planned.add(id);
      steps.push({
        id,
        assetKey: key,
        partitionKey,
        codeVersion: asset.codeVersion,
        inputs,
        upstreamSteps: upstream,
      });
    }
    stepsOf.set(key, ids);
  }
  return steps;
}

/** The id of the step building `key` (partition `partitionKey`). */
export function stepId(key: AssetKey, partitionKey: string | null): string {
  return partitionKey === null ? key : `${key}[${partitionKey}]`;
}

function plannedInput(
  asset: AssetDefinition<object>,
  dep: { readonly name: string; readonly key: AssetKey },
  partitionKey: string | null,
  graph: AssetGraph,
): PlannedInput {
  const upstream = graph.get(dep.key);
  const partitions: InputPartitions =
    upstream.partitions === null
      ? { kind: "whole" }
      : asset.partitions === null || partitionKey === null
        ? { kind: "all" }
        : { kind: "same", partitionKey };
  return { name: dep.name, assetKey: dep.key, partitions };
}

function resolvePartitionKeys(
  partitioned: ReadonlyArray<AssetDefinition<object>>,
  request: PlanRequest,
): ReadonlyArray<string> {
  const given = request.partitions ?? [];
  const range = request.partitionRange;
  const first = partitioned[0];
  if (request.allPartitions === true) return allPartitionKeys(partitioned, request);
  if (first === undefined) {
    if (given.length > 0 || range !== undefined) {
      throw new StrataError(
        "bad_partition",
        "--partition was given, but no selected asset is partitioned; leave it out",
      );
    }
    return [];
  }
  const definition = first.partitions as PartitionsDefinition;
  const now = request.now ?? new Date();
  if (given.length === 0 && range === undefined) {
    const keys = definition.keys(now);
    const example = keys[keys.length - 1] ?? "KEY";
    const exampleRange =
      keys.length > 1
        ? ` or --partition-range ${keys[Math.max(0, keys.length - 7)]}..${example}`
        : "";
    throw new StrataError(
      "bad_partition",
      `asset "${first.key}" is partitioned (${definition.describe()}); choose partitions with --partition KEY (e.g. --partition ${example})${exampleRange}, or build them all with --all-partitions`,
    );
  }
  const keys: string[] = [...given];
  let rangeKeys: ReadonlyArray<string> = [];
  if (range !== undefined) {
    const match = /^(.+?)\.\.(.+)$/.exec(range);
    if (match === null) {
      throw new StrataError(
        "bad_partition",
        `partition range "${range}" is not of the form FROM..TO (e.g. 2026-01-01..2026-01-31)`,
      );
    }
    rangeKeys = definition.range(match[1]!, match[2]!, now);
    for (const key of rangeKeys) keys.push(key);
  }
  const unique = [...new Set(keys)];
  if (unique.length > MAX_RUN_PARTITIONS) {
    const asked = range !== undefined ? `--partition-range "${range}"` : "--partition";
    const first =
      rangeKeys.length > MAX_RUN_PARTITIONS
        ? `, starting with --partition-range ${rangeKeys[0]}..${rangeKeys[MAX_RUN_PARTITIONS - 1]}`
        : "";
    throw new StrataError(
      "bad_partition",
      `${asked} selects ${unique.length} partitions; one run builds at most ${MAX_RUN_PARTITIONS}: split it into several runs${first}`,
    );
  }
  for (const asset of partitioned) {
    const partitions = asset.partitions as PartitionsDefinition;
    for (const key of unique) {
      if (!partitions.has(key, now)) throw unknownPartition(asset, partitions, key, now);
    }
  }
  return unique;
}

/** Every key of the one partitioning the partitioned assets of the plan share. */
function allPartitionKeys(
  partitioned: ReadonlyArray<AssetDefinition<object>>,
  request: PlanRequest,
): ReadonlyArray<string> {
  if ((request.partitions ?? []).length > 0 || request.partitionRange !== undefined) {
    throw new StrataError(
      "bad_partition",
      "--all-partitions builds every partition; leave out --partition and --partition-range",
    );
  }
  const first = partitioned[0];
  if (first === undefined) return [];
  const definition = first.partitions as PartitionsDefinition;
  const other = partitioned.find((a) => !(a.partitions as PartitionsDefinition).equals(definition));
  if (other !== undefined) {
    throw new StrataError(
      "bad_partition",
      `--all-partitions needs one partitioning, but asset "${first.key}" is ${definition.describe()} and asset "${other.key}" is ${(other.partitions as PartitionsDefinition).describe()}; materialize them in separate selections`,
    );
  }
  const keys = definition.keys(request.now ?? new Date());
  if (keys.length === 0) {
    throw new StrataError(
      "bad_partition",
      `asset "${first.key}" has no complete partition yet (${definition.describe()}); there is nothing to build`,
    );
  }
  return keys;
}

function unknownPartition(
  asset: AssetDefinition<object>,
  partitions: PartitionsDefinition,
  key: string,
  now: Date,
): StrataError {
  const keys = partitions.keys(now);
  let hint: string;
  if (partitions.kind === "static") {
    const close = closestMatch(key, keys);
    hint =
      close === undefined
        ? `valid keys are ${keys.map((k) => `"${k}"`).join(", ")}`
        : `did you mean "${close}"?`;
  } else if (keys.length === 0) {
    hint = `it has no complete partition yet (the first is "${partitions.start}")`;
  } else {
    hint = `valid keys run from "${keys[0]}" to "${keys[keys.length - 1]}"`;
  }
  return new StrataError(
    "bad_partition",
    `"${key}" is not a partition of asset "${asset.key}" (${partitions.describe()}); ${hint}`,
  );
}

/**
 * The plan without the steps in `done` (they succeeded in an earlier run): what
 * `strata runs resume` builds. Remaining steps read those assets' latest materializations.
 *
 * @example
 * const rest = remainingPlan(plan, new Set(["raw/documents"]));
 */
export function remainingPlan(
  plan: MaterializationPlan,
  done: ReadonlySet<string>,
): MaterializationPlan {
  const steps = plan.steps
    .filter((s) => !done.has(s.id))
    .map((s) => ({ ...s, upstreamSteps: s.upstreamSteps.filter((id) => !done.has(id)) }));
  return { ...plan, steps };
}
