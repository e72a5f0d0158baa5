import type { InferResultRow, InferSpec } from "../assets/asset-context.js";
import type { ProjectDefinition } from "../assets/project-definition.js";
import { StrataError } from "../errors.js";
import { buildRequest, requestParams } from "../inference/inference-request.js";
import { InferenceRuntime } from "../inference/inference-runtime.js";
import { loadTokenEstimator, outputCeiling } from "../inference/token-estimate.js";
import type { AssetGraph } from "../lineage/asset-graph.js";
import { findCachedAnswers } from "../store/ledger-queries.js";
import type { Store } from "../store/store.js";
import { addDecimals, callCost, fromFemtos } from "../util/decimal.js";
import { errorMessage } from "../util/error-message.js";
import { newId } from "../util/ids.js";
import { normalizeComputeResult } from "../values/compute-result.js";
import type { MaterializationPlan, PlanStep } from "./materialization-plan.js";
import { StepContext } from "./run-context.js";
import { StepInputs } from "./step-inputs.js";

/** What a dry run expects one step's inference to cost. */
export interface InferenceEstimate {
  readonly models: ReadonlyArray<string>;
  readonly documents: number;
  /**
   * Documents answered for free: by the ledger, or by the call of an earlier document of the run
   * that makes the same request (a run sends each request once).
   */
  readonly cacheHits: number;
  /** Prompt tokens of the documents that would be sent (js-tiktoken estimate). */
  readonly promptTokens: number;
  /** The most output tokens those documents could produce (`max_tokens` × documents). */
  readonly outputTokenCeiling: number;
  /** Exact decimals: prompt tokens at the input price, and that plus the output ceiling. */
  readonly costLowUsd: string;
  readonly costHighUsd: string;
}

/** A step of a dry run: its estimate, or why there is none. */
export interface DryRunStep {
  readonly step: PlanStep;
  /** Null when the step calls no model. */
  readonly inference: InferenceEstimate | null;
  /** Why the step could not be estimated (its upstream values do not exist yet, ...). */
  readonly note: string | null;
}

/**
 * Estimates a plan without calling any endpoint or writing anything: each step's `compute` runs
 * in memory on its upstream values (this dry run's own results, else the latest stored
 * materializations) with a `ctx.infer` that counts documents, asks the ledger which it would
 * answer, and estimates tokens and the cost range instead of calling the model. A step whose
 * upstream values do not exist, or whose compute fails on placeholder inference output, is
 * reported with a note instead of numbers.
 *
 * @example
 * const steps = await estimatePlan({ project, store, plan, storageRoot: storageRootOf(dir) });
 */
export async function estimatePlan(options: {
  readonly project: { readonly definition: ProjectDefinition; readonly graph: AssetGraph };
  readonly store: Store;
  readonly plan: MaterializationPlan;
  /** Where the recorded values of the plan's upstream assets are (see `resolveStorageRoot`). */
  readonly storageRoot: string;
  readonly noCache?: boolean;
}): Promise<ReadonlyArray<DryRunStep>> {
  const { project, store, plan } = options;
  // Only for model lookup and prices: no call is ever made through it.
  const runtime = new InferenceRuntime({
    project: project.definition,
    db: store.db,
    env: {},
    maxCostUsd: null,
  });
  const inputs = new StepInputs(store.db, plan.steps, options.storageRoot);
  const runId = `dry-run-${newId()}`;
  // The requests this dry run has counted as sent: a run sends each once.
  const sent = new Set<string>();
  const signal = new AbortController().signal;
  const out: DryRunStep[] = [];
  for (const step of plan.steps) {
    const estimates: InferenceEstimate[] = [];
    const ctx = new StepContext({
      runId,
      assetKey: step.assetKey,
      partitionKey: step.partitionKey,
      signal,
      log: () => {},
      inference: {
        infer: async <I, O>(items: ReadonlyArray<I>, spec: InferSpec<I, O>) => {
          estimates.push(
            await estimateInfer(runtime, step, items, spec, options.noCache === true, sent),
          );
          return items.map(
            (item): InferResultRow<O> => ({
              id: String(spec.id(item)),
              output: null,
              model: spec.model,
              status: "succeeded",
              error: null,
              prompt_tokens: 0,
              cached_tokens: 0,
              completion_tokens: 0,
              cost_usd: "0",
            }),
          );
        },
      },
    });
    let note: string | null = null;
    try {
      const resolved = await inputs.resolve(step);
      const value = await project.graph.get(step.assetKey).compute(ctx, resolved.values);
      inputs.produced(
        step,
        `${runId}-${step.id}`,
        runId,
        normalizeComputeResult(value, step.assetKey),
      );
    } catch (error) {
      inputs.release(step);
      note =
        error instanceof StrataError && error.code === "upstream_missing"
          ? "not estimated: its upstream values do not exist yet"
          : `not estimated: ${errorMessage(error)}`;
    }
    out.push({
      step,
      inference: mergeEstimates(estimates),
      note: estimates.length > 0 ? null : note,
    });
  }
  return out;
}

async function estimateInfer<I, O>(
  runtime: InferenceRuntime,
  step: PlanStep,
  items: ReadonlyArray<I>,
  spec: InferSpec<I, O>,
  noCache: boolean,
  sent: Set<string>,
): Promise<InferenceEstimate> {
  const model = runtime.model(spec.model, step.assetKey);
  const params = requestParams(spec.params);
  const estimator = await loadTokenEstimator();
  const messages = items.map((item) => spec.messages(item));
  // Named as the fan-out names the request it sends, so the ledger's answers are found.
  const hashes = messages.map((m) => buildRequest(model.name, m, params).hash);
  const cached = noCache ? new Map() : await findCachedAnswers(runtime.db, hashes);
  let promptTokens = 0;
  let calls = 0;
  messages.forEach((m, i) => {
    const hash = hashes[i]!;
    if (cached.has(hash) || sent.has(hash)) return;
    sent.add(hash);
    calls += 1;
    promptTokens += estimator.promptTokens(m);
  });
  const ceiling = outputCeiling(params) * calls;
  const low = callCost({ prompt: promptTokens, cached: 0, completion: 0 }, model.prices);
  const high = callCost({ prompt: promptTokens, cached: 0, completion: ceiling }, model.prices);
  return {
    models: [spec.model, ...(spec.fallback ?? [])],
    documents: items.length,
    cacheHits: items.length - calls,
    promptTokens,
    outputTokenCeiling: ceiling,
    costLowUsd: fromFemtos(low),
    costHighUsd: fromFemtos(high),
  };
}

function mergeEstimates(estimates: ReadonlyArray<InferenceEstimate>): InferenceEstimate | null {
  if (estimates.length === 0) return null;
  const sum = (pick: (e: InferenceEstimate) => number) =>
    estimates.reduce((t, e) => t + pick(e), 0);
  const sumUsd = (pick: (e: InferenceEstimate) => string) => addDecimals(estimates.map(pick));
  return {
    models: [...new Set(estimates.flatMap((e) => e.models))],
    documents: sum((e) => e.documents),
    cacheHits: sum((e) => e.cacheHits),
    promptTokens: sum((e) => e.promptTokens),
    outputTokenCeiling: sum((e) => e.outputTokenCeiling),
    costLowUsd: sumUsd((e) => e.costLowUsd),
    costHighUsd: sumUsd((e) => e.costHighUsd),
  };
}
