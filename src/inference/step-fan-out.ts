import type { ChatMessage, InferSpec } from "../assets/asset-context.js";
import type { CachedAnswer } from "../store/ledger-queries.js";
import { errorMessage } from "../util/error-message.js";
import {
  type DocumentAnswer,
  documentAnswer,
  NOTHING_SPENT,
  type Spent,
} from "./document-answer.js";
import {
  CANCELED,
  endsDocument,
  type InferenceFailure,
  inferenceFailure,
} from "./inference-failure.js";
import { buildRequest, type InferenceRequest } from "./inference-request.js";
import type { InferenceRuntime, ResolvedModel } from "./inference-runtime.js";
import type { InferenceStep } from "./inference-step.js";
import { cacheHit, recordCall } from "./ledger-entry.js";
import { type CallOutcome, callModel } from "./model-call.js";
import { type ParsedAnswer, parseAnswer } from "./parse-answer.js";
import { addUsage, ZERO_USAGE } from "./read-usage.js";
import type { SharedOutcome } from "./shared-requests.js";
import type { StepDocument } from "./step-documents.js";
import { StepTally } from "./step-tally.js";
import { outputCeiling, type TokenEstimator } from "./token-estimate.js";

/** What one step's fan-out works with, resolved once for all its documents. */
export interface StepFanOutOptions<I, O> {
  readonly runtime: InferenceRuntime;
  readonly step: InferenceStep;
  readonly spec: InferSpec<I, O>;
  /** The spec's model, then its fallbacks. */
  readonly chain: ReadonlyArray<ResolvedModel>;
  /** The spec's params as they are sent (see `requestParams`). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Loaded when a budget or a rate limit needs token estimates. */
  readonly estimator: TokenEstimator | undefined;
  /** The ledger's answers to the step's requests, by request hash. */
  readonly answers: ReadonlyMap<string, CachedAnswer>;
  /** Documents of the step, for progress. */
  readonly total: number;
}

/**
 * One step's `ctx.infer`: answers its documents from the ledger's cache, from a call the run is
 * already making for the same request, or from the model and then each fallback in turn, with a
 * pool of workers sized to the endpoints' concurrency. Each document's row says what it cost.
 *
 * @example
 * const fanOut = new StepFanOut({ runtime, step, spec, chain, params, estimator, answers, total });
 * const answers = await fanOut.answerAll(documents);
 */
export class StepFanOut<I, O> {
  readonly tally: StepTally;
  readonly #runtime: InferenceRuntime;
  readonly #step: InferenceStep;
  readonly #spec: InferSpec<I, O>;
  readonly #chain: ReadonlyArray<ResolvedModel>;
  readonly #params: Readonly<Record<string, unknown>>;
  readonly #estimator: TokenEstimator | undefined;
  readonly #answers: ReadonlyMap<string, CachedAnswer>;
  readonly #outputCeiling: number;

  constructor(options: StepFanOutOptions<I, O>) {
    this.#runtime = options.runtime;
    this.#step = options.step;
    this.#spec = options.spec;
    this.#chain = options.chain;
    this.#params = options.params;
    this.#estimator = options.estimator;
    this.#answers = options.answers;
    this.#outputCeiling = outputCeiling(options.params);
    this.tally = new StepTally(options.runtime.onProgress, options.step.stepId, options.total);
  }

  /**
   * Answers every document, in input order; a document the step's cancellation left unanswered
   * has no entry (the array is sparse).
   */
  async answerAll(documents: ReadonlyArray<StepDocument<I>>): Promise<DocumentAnswer<O>[]> {
    const results = new Array<DocumentAnswer<O>>(documents.length);
    let next = 0;
    const worker = async () => {
      while (next < documents.length && !this.#step.signal.aborted) {
        const doc = documents[next++]!;
        const answer = await this.answer(doc);
        results[doc.index] = answer;
        this.tally.add(answer.row, answer.cost);
        this.tally.report();
      }
    };
    const slots = Math.max(...this.#chain.map((m) => m.limiter.max)) + 4;
    await Promise.all(Array.from({ length: Math.min(documents.length, slots) }, worker));
    return results;
  }

  /** Answers one document: from the ledger's cache, else the model, else each fallback in turn. */
  async answer(doc: StepDocument<I>): Promise<DocumentAnswer<O>> {
    for (const [c, model] of this.#chain.entries()) {
      const hash = doc.hashes[c]!;
      const cached = this.#answers.get(hash);
      if (cached !== undefined) {
        this.recordCacheHit(doc, model, hash, cached.id, cached.output);
        const parsed = this.#parse(cached.output, doc.item);
        if (!parsed.ok) return this.#failed(doc, model.key, parsed.failure, NOTHING_SPENT);
        return this.#answered(doc, model.key, parsed.value, NOTHING_SPENT);
      }
    }
    let spent = NOTHING_SPENT;
    let last: { model: string | null; failure: InferenceFailure } = {
      model: null,
      failure: inferenceFailure("quota", "no model could be tried"),
    };
    for (const [c, model] of this.#chain.entries()) {
      const quota = this.#runtime.quotaExhausted(model.endpointKey);
      if (quota !== undefined) {
        const message = `endpoint "${model.endpointKey}" is out of quota: ${quota}`;
        last = { model: model.key, failure: inferenceFailure("quota", message) };
        continue;
      }
      const outcome = await this.sendOnce(doc, model, doc.hashes[c]!);
      spent = { usage: addUsage(spent.usage, outcome.usage), cost: spent.cost + outcome.cost };
      if (outcome.kind === "answered") {
        return this.#answered(doc, model.key, outcome.value as O | string, spent);
      }
      last = { model: model.key, failure: outcome.failure };
      if (endsDocument(outcome.failure)) break;
    }
    return this.#failed(doc, last.model, last.failure, spent);
  }

  /** A cache hit's row: no tokens, no cost, pointing at the row that paid for the answer. */
  recordCacheHit(
    doc: StepDocument<I>,
    model: ResolvedModel,
    hash: string,
    cachedFrom: number,
    output: string,
  ): void {
    const site = { step: this.#step, documentId: doc.id, model, hash };
    recordCall(this.#runtime, site, cacheHit(cachedFrom, output));
    this.tally.cacheHits += 1;
  }

  /**
   * Asks `model` for the document, once per run and request: when the run is already making the
   * same request (this step or another), the document waits for that call and is answered from it
   * with a cache hit; otherwise it builds its messages again, checks they are the ones it was
   * hashed with, and makes the call, which the others making the request then share.
   */
  async sendOnce(doc: StepDocument<I>, model: ResolvedModel, hash: string): Promise<CallOutcome> {
    const { sharedRequests } = this.#runtime;
    for (let call = sharedRequests.get(hash); call !== undefined; ) {
      const shared = await call;
      if (shared === undefined) {
        // That call was abandoned (its step canceled): make it, unless this step is canceled too.
        if (this.#step.signal.aborted) return unbilled(CANCELED);
        call = sharedRequests.get(hash);
        continue;
      }
      if (shared.kind !== "answered") return unbilled(shared.failure);
      this.recordCacheHit(doc, model, hash, shared.id, shared.text);
      const parsed = this.#parse(shared.text, doc.item);
      if (!parsed.ok) return unbilled(parsed.failure);
      return { kind: "answered", value: parsed.value, usage: ZERO_USAGE, cost: 0n };
    }
    const built = this.#rebuild(doc, model, hash);
    if (!built.ok) return unbilled(built.failure);
    const settle = sharedRequests.begin(hash);
    let outcome: CallOutcome | undefined;
    try {
      outcome = await callModel(this.#runtime, this.#step, {
        documentId: doc.id,
        model,
        request: built.request,
        estimatedPromptTokens: this.#estimator?.promptTokens(built.messages) ?? 0,
        outputCeiling: this.#outputCeiling,
        parse: (text) => this.#parse(text, doc.item),
      });
      return outcome;
    } finally {
      settle(sharedOutcome(outcome));
    }
  }

  /**
   * The document's request, built again from the item (see {@link StepDocument}): only documents
   * being sent hold their messages. What is sent must be what was hashed, or its answer would be
   * cached under another request.
   */
  #rebuild(
    doc: StepDocument<I>,
    model: ResolvedModel,
    hash: string,
  ):
    | { ok: true; request: InferenceRequest; messages: ReadonlyArray<ChatMessage> }
    | { ok: false; failure: InferenceFailure } {
    let messages: ReadonlyArray<ChatMessage>;
    try {
      messages = this.#spec.messages(doc.item);
    } catch (error) {
      const message = `messages() of document "${doc.id}" threw when it was sent: ${errorMessage(error)}`;
      return { ok: false, failure: inferenceFailure("request", message) };
    }
    let request: InferenceRequest | undefined;
    try {
      request = buildRequest(model.name, messages, this.#params);
    } catch {
      request = undefined;
    }
    if (request === undefined || request.hash !== hash) {
      const message = `asset "${this.#step.assetKey}": messages() of document "${doc.id}" returned different messages when it was sent than when it was checked; messages() must be deterministic`;
      return { ok: false, failure: inferenceFailure("request", message) };
    }
    return { ok: true, request, messages };
  }

  #parse(text: string, item: I): ParsedAnswer<O> {
    return parseAnswer(this.#spec, text, item);
  }

  #answered(
    doc: StepDocument<I>,
    model: string,
    value: O | string,
    spent: Spent,
  ): DocumentAnswer<O> {
    return documentAnswer(doc, model, { output: value as O, failure: null }, spent);
  }

  #failed(
    doc: StepDocument<I>,
    model: string | null,
    failure: InferenceFailure,
    spent: Spent,
  ): DocumentAnswer<O> {
    return documentAnswer<I, O>(doc, model, { output: null, failure }, spent);
  }
}

/** A failure before anything was billed. */
function unbilled(failure: InferenceFailure): CallOutcome {
  return { kind: "failed", failure, usage: ZERO_USAGE, cost: 0n };
}

/** What the documents sharing a call learn of it; undefined: it was abandoned, make it again. */
function sharedOutcome(
  outcome: CallOutcome | undefined,
): SharedOutcome | Promise<SharedOutcome> | undefined {
  if (outcome === undefined) return undefined;
  if (outcome.answer !== undefined) {
    // The answer is shared (each document parses it itself) once its paying row has an id.
    const { text } = outcome.answer;
    return outcome.answer.id.then(
      (id): SharedOutcome => ({ kind: "answered", id, text }),
      (error): SharedOutcome => ({
        kind: "failed",
        failure: inferenceFailure(
          "store",
          `the answer to this request could not be recorded: ${errorMessage(error)}`,
        ),
      }),
    );
  }
  if (outcome.kind === "answered" || outcome.failure.kind === "canceled") return undefined;
  return { kind: "failed", failure: outcome.failure };
}
