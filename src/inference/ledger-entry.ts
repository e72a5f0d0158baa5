import type { LedgerEntry } from "../store/cost-ledger.js";
import type { InferenceRuntime, ResolvedModel } from "./inference-runtime.js";
import type { InferenceStep } from "./inference-step.js";
import { type Usage, ZERO_USAGE } from "./read-usage.js";

/** What became of one call (or attempt, or cache hit), as its ledger row says. */
export interface CallRecord {
  readonly status: "succeeded" | "failed";
  readonly attempts: number;
  readonly usage: Usage;
  readonly latencyMs: number | null;
  readonly cacheHit: boolean;
  readonly cachedFrom: number | null;
  readonly error: string | null;
  readonly output: string | null;
}

/** A failed attempt that the endpoint did not bill (or whose usage is unknown). */
export function failedAttempt(
  attempts: number,
  latencyMs: number | null,
  error: string,
): CallRecord {
  return {
    status: "failed",
    attempts,
    usage: ZERO_USAGE,
    latencyMs,
    cacheHit: false,
    cachedFrom: null,
    error,
    output: null,
  };
}

/** A cache hit: no tokens, no cost, pointing at the row that paid for the answer. */
export function cacheHit(cachedFrom: number, output: string): CallRecord {
  return {
    status: "succeeded",
    attempts: 0,
    usage: ZERO_USAGE,
    latencyMs: null,
    cacheHit: true,
    cachedFrom,
    error: null,
    output,
  };
}

/** Where a call's row belongs: its step, document, model and request. */
export interface CallSite {
  readonly step: InferenceStep;
  readonly documentId: string;
  readonly model: ResolvedModel;
  readonly hash: string;
}

/**
 * The ledger row of a call: its site, what became of it, and the model's prices as they were
 * (the row's `cost_usd` is computed from them by Postgres, equal to the cost computed here).
 *
 * @example
 * runtime.ledger.record(ledgerEntry(site, failedAttempt(1, null, "500 busy")));
 */
export function ledgerEntry(site: CallSite, call: CallRecord): LedgerEntry {
  const { step, model } = site;
  return {
    runId: step.runId,
    materializationId: step.materializationId,
    assetKey: step.assetKey,
    partitionKey: step.partitionKey,
    documentId: site.documentId,
    model: model.key,
    providerModel: model.name,
    endpoint: model.endpointKey,
    requestHash: site.hash,
    status: call.status,
    attempts: call.attempts,
    promptTokens: call.usage.prompt,
    cachedTokens: call.usage.cached,
    completionTokens: call.usage.completion,
    reasoningTokens: call.usage.reasoning,
    inputPricePerMTok: model.priceSnapshot.input,
    cachedInputPricePerMTok: model.priceSnapshot.cachedInput,
    outputPricePerMTok: model.priceSnapshot.output,
    latencyMs: call.latencyMs,
    cacheHit: call.cacheHit,
    cachedFrom: call.cachedFrom,
    error: call.error,
    output: call.output,
  };
}

/** Buffers the row of a call on the run's ledger. */
export function recordCall(runtime: InferenceRuntime, site: CallSite, call: CallRecord): void {
  runtime.ledger.record(ledgerEntry(site, call));
}
