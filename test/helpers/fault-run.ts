import { existsSync } from "node:fs";
import { sql } from "kysely";
import type { InferSpec } from "../../src/assets/asset-context.js";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import {
  defineProject,
  type EndpointConfig,
  type ModelConfig,
} from "../../src/assets/project-definition.js";
import { stepInference } from "../../src/inference/fan-out.js";
import { InferenceRuntime } from "../../src/inference/inference-runtime.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import type { RunResult } from "../../src/materialize/run-result.js";
import type { CostLedgerOptions } from "../../src/store/cost-ledger.js";
import { allowsRelaxedCommits, type Store } from "../../src/store/store.js";
import { storedValuePath } from "../../src/values/storage-path.js";

/** A document of the fault suites. */
export interface FaultDoc {
  readonly id: string;
  readonly text: string;
}

/** `count` documents whose ids and prompts start with `tag`. */
export function faultDocs(count: number, tag: string): FaultDoc[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${tag}-${i}`, text: `${tag} #${i}` }));
}

/**
 * Three assets as a user writes them: `docs` (the documents) → `answers` (one `ctx.infer` call
 * over all of them, model `m`) → `digest` (one row counting the answers).
 */
export function pipelineAssets(
  docs: ReadonlyArray<FaultDoc>,
  spec: Partial<InferSpec<FaultDoc, string>> = {},
): AssetDefinition<object>[] {
  const source = asset({ key: "docs", compute: async () => docs.map((d) => ({ ...d })) });
  const answers = asset({
    key: "answers",
    deps: { docs: "docs" },
    compute: async (ctx) => {
      const rows = await ctx.infer(docs, {
        model: "m",
        id: (d) => d.id,
        messages: (d) => [{ role: "user", content: `Summarize ${d.text}` }],
        params: { max_tokens: 24, temperature: 0 },
        ...spec,
      });
      return rows.map((r) => ({ ...r, output: r.output === null ? null : String(r.output) }));
    },
  });
  const digest = asset({
    key: "digest",
    deps: { answers: "answers" },
    compute: async () => [{ done: true }],
  });
  return [source, answers, digest] as AssetDefinition<object>[];
}

/** Runs every asset of `assets` the way the CLI does (materialize + the inference runtime). */
export async function runAssets(options: {
  readonly store: Store;
  readonly storageRoot: string;
  readonly assets: ReadonlyArray<AssetDefinition<object>>;
  readonly endpoints: Readonly<Record<string, EndpointConfig>>;
  readonly models: Readonly<Record<string, ModelConfig>>;
  readonly ledger?: CostLedgerOptions;
}): Promise<RunResult> {
  const definition = defineProject({
    assets: options.assets,
    endpoints: options.endpoints,
    models: options.models,
  });
  const graph = AssetGraph.fromAssets(definition.assets);
  const plan = planMaterialization(graph, { selection: "*" });
  const runtime = new InferenceRuntime({
    project: definition,
    db: options.store.db,
    env: {},
    maxCostUsd: null,
    // as the CLI does: dispatch counts relaxed on a Postgres server
    ledger: { relaxedDispatchCommit: allowsRelaxedCommits(options.store), ...options.ledger },
  });
  try {
    return await executeRun({
      project: { definition, graph },
      store: options.store,
      plan,
      storageRoot: options.storageRoot,
      inference: (step) => stepInference(runtime, step),
    });
  } finally {
    // as the CLI does: a last try at writing what the ledger still holds
    await runtime.close().catch(() => {});
  }
}

/** A step recorded `succeeded` whose Arrow file, row count or inputs are missing. */
export interface BrokenSuccess {
  readonly id: string;
  readonly assetKey: string;
  readonly problem: string;
}

/**
 * Every materialization of the run recorded `succeeded` must have its Arrow file on disk, a row
 * count, and one recorded input per dependency; returns the ones that do not. Files are found
 * under `storageRoot`, where the run stored them.
 */
export async function brokenSuccesses(
  store: Store,
  runId: string,
  storageRoot: string,
): Promise<BrokenSuccess[]> {
  const { rows } = await sql<{
    id: string;
    asset_key: string;
    storage_path: string | null;
    row_count: number | null;
    deps: number;
    inputs: number;
  }>`
    select m.id, m.asset_key, m.storage_path, m.row_count::int as row_count,
           jsonb_array_length(m.dep_keys::jsonb)::int as deps,
           (select count(*) from strata.materialization_inputs i
             where i.materialization_id = m.id)::int as inputs
    from strata.materializations m
    where m.run_id = ${runId} and m.status = 'succeeded'`.execute(store.db);
  const broken: BrokenSuccess[] = [];
  for (const r of rows) {
    const problem =
      r.storage_path === null
        ? "no storage path"
        : !existsSync(storedValuePath(storageRoot, r.storage_path))
          ? `no file at ${r.storage_path}`
          : r.row_count === null
            ? "no row count"
            : r.inputs !== r.deps
              ? `${r.inputs} inputs recorded for ${r.deps} deps`
              : null;
    if (problem !== null) broken.push({ id: r.id, assetKey: r.asset_key, problem });
  }
  return broken;
}

/** The recorded status of every step of the run, by asset key. */
export async function recordedSteps(store: Store, runId: string): Promise<Record<string, string>> {
  const rows = await store.db
    .selectFrom("strata.materializations")
    .select(["asset_key", "status"])
    .where("run_id", "=", runId)
    .execute();
  return Object.fromEntries(rows.map((r) => [r.asset_key, r.status]));
}

/** The ledger's billed calls (succeeded, not from the cache) over some runs, as a sim bill. */
export async function ledgerBill(
  store: Store,
  runIds: ReadonlyArray<string>,
): Promise<{
  calls: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}> {
  const { rows } = await sql<{ calls: number; prompt: number; cached: number; completion: number }>`
    select (count(*) filter (where prompt_tokens > 0))::int as calls,
           coalesce(sum(prompt_tokens), 0)::int as prompt,
           coalesce(sum(cached_tokens), 0)::int as cached,
           coalesce(sum(completion_tokens), 0)::int as completion
    from strata.inference_calls where run_id = any(${runIds}::text[])`.execute(store.db);
  const r = rows[0]!;
  return {
    calls: r.calls,
    promptTokens: r.prompt,
    cachedTokens: r.cached,
    completionTokens: r.completion,
  };
}

/** Document ids of the run whose final ledger row is a success (a billed call or a cache hit). */
export async function answeredDocuments(store: Store, runIds: ReadonlyArray<string>) {
  const rows = await store.db
    .selectFrom("strata.inference_calls")
    .select("document_id")
    .distinct()
    .where("run_id", "in", runIds)
    .where("status", "=", "succeeded")
    .execute();
  return new Set(rows.map((r) => r.document_id));
}

/** Calls `check` every few milliseconds until it returns true or the returned stop is called. */
export function watch(check: () => boolean, everyMs = 5): () => void {
  const timer = setInterval(() => {
    if (check()) clearInterval(timer);
  }, everyMs);
  return () => clearInterval(timer);
}
