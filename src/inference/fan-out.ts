import type { InferResultRow, InferSpec } from "../assets/asset-context.js";
import { StrataError } from "../errors.js";
import { type CachedAnswer, findCachedAnswers } from "../store/ledger-queries.js";
import type { DocumentAnswer } from "./document-answer.js";
import { requestParams } from "./inference-request.js";
import type { InferenceRuntime, ResolvedModel } from "./inference-runtime.js";
import type { InferenceStep, StepInference } from "./inference-step.js";
import { checkSpec, stepDocuments } from "./step-documents.js";
import { StepFanOut } from "./step-fan-out.js";
import { loadTokenEstimator } from "./token-estimate.js";

/** Where the calls of one step are recorded. */
export type FanOutStep = InferenceStep;

/**
 * `ctx.infer` for one step: fans its documents out to the model's endpoint and returns one row
 * per document in input order.
 *
 * @example
 * const inference = stepInference(runtime, { runId, stepId, materializationId, assetKey, partitionKey: null, signal });
 */
export function stepInference(runtime: InferenceRuntime, step: FanOutStep): StepInference {
  return { infer: (items, spec) => fanOut(runtime, step, items, spec) };
}

async function fanOut<I, O>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  items: ReadonlyArray<I>,
  spec: InferSpec<I, O>,
): Promise<InferResultRow<O>[]> {
  checkSpec(step.assetKey, items, spec);
  const chain = [spec.model, ...(spec.fallback ?? [])].map((key) =>
    runtime.model(key, step.assetKey),
  );
  const params = requestParams(spec.params);
  const documents = stepDocuments(step.assetKey, items, spec, chain, params);
  const needsEstimate = runtime.budget.cap !== null || chain.some((m) => m.bucket.limited);
  const estimator = needsEstimate ? await loadTokenEstimator() : undefined;

  // Documents making a request this run is already making (in this step or another) wait for
  // that call; held until this step's rows are flushed, where later steps' lookups find them.
  const hashes = documents.flatMap((d) => d.hashes);
  const release = runtime.sharedRequests.hold(hashes);
  let answers: Map<string, CachedAnswer>;
  try {
    // Requests the ledger has answered before are answered from it, for any model of the chain
    // (with --no-cache, only answers of this run and of the runs it resumes).
    answers =
      runtime.cacheRuns?.length === 0
        ? new Map<string, CachedAnswer>()
        : await findCachedAnswers(runtime.db, hashes, runtime.cacheRuns ?? undefined);
  } catch (error) {
    release();
    throw error;
  }

  const fanOut = new StepFanOut({
    runtime,
    step,
    spec,
    chain,
    params,
    estimator,
    answers,
    total: documents.length,
  });
  let results: DocumentAnswer<O>[];
  try {
    results = await fanOut.answerAll(documents);
  } finally {
    // The checkpoint: every answered call is in the ledger before the step goes on.
    await runtime.ledger.flush().finally(release);
    fanOut.tally.report(true);
  }
  checkStepOutcome(runtime, step, chain, spec, results);
  return results.map((r) => r.row);
}

/**
 * Ends the step with the error its documents' outcomes call for, in this order: every model's
 * endpoint out of quota, every endpoint refused, the step canceled, the budget reached (a
 * document not sent for it), more failed documents than `maxFailures`.
 */
function checkStepOutcome<I, O>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  chain: ReadonlyArray<ResolvedModel>,
  spec: InferSpec<I, O>,
  results: ReadonlyArray<DocumentAnswer<O>>,
): void {
  if (chain.every((m) => runtime.quotaExhausted(m.endpointKey) !== undefined)) {
    const last = chain[chain.length - 1]!;
    throw new StrataError(
      "insufficient_quota",
      `the account behind endpoint "${last.endpointKey}" is out of quota (${runtime.quotaExhausted(last.endpointKey)}); add credits or point the model at another endpoint`,
    );
  }
  const refused = chain.map((m) => runtime.refused(m.endpointKey, step.stepId));
  if (refused.every((reason) => reason !== undefined)) {
    throw new StrataError("endpoint_unreachable", refused[0]!);
  }
  if (step.signal.aborted) {
    throw new StrataError("canceled", `asset "${step.assetKey}" was canceled during inference`);
  }
  // `some` and `filter` skip the documents a cancellation left unanswered (a sparse array).
  if (runtime.budget.exhausted && results.some((r) => r.failure?.kind === "budget")) {
    throw runtime.budget.exceededError(step.runId);
  }
  const failed = results.filter((r) => r.row.status === "failed");
  const maxFailures = spec.maxFailures ?? 0;
  if (failed.length > maxFailures) {
    const first = failed[0]!.row;
    throw new StrataError(
      "inference_failed",
      `${failed.length} of ${results.length} documents failed, more than maxFailures (${maxFailures}); first: document "${first.id}": ${first.error}`,
    );
  }
}
