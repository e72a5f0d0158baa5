import { setTimeout as sleep } from "node:timers/promises";
import type { ChatCompletion } from "openai/resources/chat/completions";
import type { ChatMessage, InferResultRow, InferSpec } from "../assets/asset-context.js";
import { StoreError, StrataError } from "../errors.js";
import { type CachedAnswer, findCachedAnswers, type LedgerEntry } from "../store/cost-ledger.js";
import { addDecimals, callCostNanos, exactCallCost, type Nanos } from "../util/decimal.js";
import { redactSecrets } from "../util/redactor.js";
import { answerText } from "./answer-text.js";
import type { InferenceRuntime, ResolvedModel } from "./inference-runtime.js";
import type { InferenceStep, StepInference } from "./inference-step.js";
import { requestHash, requestParams } from "./request-hash.js";
import { backoffMs, classifyFailure, unreachableVerdict } from "./retry-policy.js";
import type { SharedOutcome } from "./shared-requests.js";
import { SignalFanOut } from "./signal-fan-out.js";
import { loadTokenEstimator, outputCeiling, type TokenEstimator } from "./token-estimate.js";

/** Where the calls of one step are recorded. */
export type FanOutStep = InferenceStep;

/** Bounds on token counts an endpoint may report for one call; past them the answer is refused. */
const MAX_REPORTED_TOKENS = 50_000_000;

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

/**
 * One document of a step. Its messages are not kept: they are built again from the item when the
 * document is sent, so a step holds the messages of its in-flight documents only (a prompt that
 * embeds the document's text is a second copy of that text once it has been serialized).
 */
interface Document<I> {
  readonly index: number;
  readonly item: I;
  readonly id: string;
  /** The request hash per model of the chain, computed from the messages when checked. */
  readonly hashes: ReadonlyArray<string>;
}

/** Counters for progress and the step's summary. */
interface Tally {
  done: number;
  failed: number;
  cacheHits: number;
  promptTokens: number;
  completionTokens: number;
  /** Exact running total of the step's cost (added per document, never re-summed). */
  cost: string;
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
  const documents = documentsOf(step.assetKey, items, spec, chain, params);
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

  const results = new Array<InferResultRow<O>>(documents.length);
  const tally: Tally = {
    done: 0,
    failed: 0,
    cacheHits: 0,
    promptTokens: 0,
    completionTokens: 0,
    cost: "0",
  };
  const report = progressReporter(runtime, step, documents.length, tally);
  let next = 0;
  let stopped: StrataError | undefined;
  const worker = async () => {
    while (next < documents.length && !step.signal.aborted) {
      const doc = documents[next++]!;
      const row = await answerDocument(
        runtime,
        step,
        doc,
        chain,
        answers,
        params,
        spec,
        estimator,
        tally,
      );
      results[doc.index] = row;
      tally.done += 1;
      if (row.status === "failed") tally.failed += 1;
      tally.promptTokens += row.prompt_tokens;
      tally.completionTokens += row.completion_tokens;
      if (row.cost_usd !== "0") tally.cost = addDecimals([tally.cost, row.cost_usd]);
      report();
    }
  };
  const workers = Math.min(documents.length, Math.max(...chain.map((m) => m.limiter.max)) + 4);
  try {
    await Promise.all(Array.from({ length: workers }, worker));
  } finally {
    // The checkpoint: every answered call is in the ledger before the step goes on.
    await runtime.ledger.flush().finally(release);
    report(true);
  }

  for (const model of chain) {
    const quota = runtime.quotaExhausted(model.endpointKey);
    if (
      quota !== undefined &&
      chain.every((m) => runtime.quotaExhausted(m.endpointKey) !== undefined)
    ) {
      stopped = new StrataError(
        "insufficient_quota",
        `the account behind endpoint "${model.endpointKey}" is out of quota (${quota}); add credits or point the model at another endpoint`,
      );
    }
  }
  if (stopped !== undefined) throw stopped;
  const refused = chain.map((m) => runtime.refused(m.endpointKey, step.stepId));
  if (refused.every((reason) => reason !== undefined)) {
    throw new StrataError("endpoint_unreachable", refused[0]!);
  }
  if (step.signal.aborted) {
    throw new StrataError("canceled", `asset "${step.assetKey}" was canceled during inference`);
  }
  if (
    runtime.budget.exhausted &&
    results.some((r) => r.status === "failed" && r.error === BUDGET_REASON)
  ) {
    throw runtime.budget.exceededError(step.runId);
  }
  const failed = results.filter((r) => r.status === "failed");
  const maxFailures = spec.maxFailures ?? 0;
  if (failed.length > maxFailures) {
    const first = failed[0]!;
    throw new StrataError(
      "inference_failed",
      `${failed.length} of ${documents.length} documents failed, more than maxFailures (${maxFailures}); first: document "${first.id}": ${first.error}`,
    );
  }
  return results;
}

const BUDGET_REASON = "not sent: the run's --max-cost would be exceeded";

/** Answers one document: from the ledger's cache, else the model, else each fallback in turn. */
async function answerDocument<I, O>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  doc: Document<I>,
  chain: ReadonlyArray<ResolvedModel>,
  answers: ReadonlyMap<string, CachedAnswer>,
  params: Readonly<Record<string, unknown>>,
  spec: InferSpec<I, O>,
  estimator: TokenEstimator | undefined,
  tally: Tally,
): Promise<InferResultRow<O>> {
  const spent = { prompt: 0, cached: 0, completion: 0, cost: [] as string[] };
  const fail = (model: string | null, error: string): InferResultRow<O> => ({
    id: doc.id,
    output: null,
    model,
    status: "failed",
    // what the user's rows (and Arrow files) hold: no secret an endpoint echoed
    error: redactSecrets(error),
    prompt_tokens: spent.prompt,
    cached_tokens: spent.cached,
    completion_tokens: spent.completion,
    cost_usd: addDecimals(spent.cost),
  });

  for (const [c, model] of chain.entries()) {
    const hash = doc.hashes[c]!;
    const cached = answers.get(hash);
    if (cached !== undefined) {
      recordCacheHit(runtime, step, doc, model, hash, cached.id, cached.output, tally);
      const parsed = parseOutput(spec, cached.output, doc.item);
      if (!parsed.ok) return fail(model.key, parsed.error);
      return {
        id: doc.id,
        output: parsed.value as O,
        model: model.key,
        status: "succeeded",
        error: null,
        prompt_tokens: 0,
        cached_tokens: 0,
        completion_tokens: 0,
        cost_usd: "0",
      };
    }
  }

  let lastError = "no model could be tried";
  let lastModel: string | null = null;
  for (const [c, model] of chain.entries()) {
    const quota = runtime.quotaExhausted(model.endpointKey);
    if (quota !== undefined) {
      lastError = `endpoint "${model.endpointKey}" is out of quota: ${quota}`;
      lastModel = model.key;
      continue;
    }
    const hash = doc.hashes[c]!;
    const outcome = await sendOnce(runtime, step, doc, model, hash, params, spec, estimator, tally);
    spent.prompt += outcome.usage.prompt;
    spent.cached += outcome.usage.cached;
    spent.completion += outcome.usage.completion;
    if (outcome.cost !== "0") spent.cost.push(outcome.cost);
    lastModel = model.key;
    if (outcome.kind === "answered") {
      return {
        id: doc.id,
        output: outcome.value as O,
        model: model.key,
        status: "succeeded",
        error: null,
        prompt_tokens: spent.prompt,
        cached_tokens: spent.cached,
        completion_tokens: spent.completion,
        cost_usd: addDecimals(spent.cost),
      };
    }
    lastError = outcome.error;
    if (outcome.kind === "stop") break;
  }
  return fail(lastModel, lastError);
}

/** A cache hit's row: no tokens, no cost, pointing at the row that paid for the answer. */
function recordCacheHit<I>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  doc: Document<I>,
  model: ResolvedModel,
  hash: string,
  cachedFrom: number,
  output: string,
  tally: Tally,
): void {
  record(runtime, step, doc, model, hash, {
    status: "succeeded",
    attempts: 0,
    usage: ZERO_USAGE,
    latencyMs: null,
    cacheHit: true,
    cachedFrom,
    error: null,
    output,
  });
  tally.cacheHits += 1;
}

const ZERO_USAGE = { prompt: 0, cached: 0, completion: 0, reasoning: 0 } as const;

type Usage = { prompt: number; cached: number; completion: number; reasoning: number };

/** An answer the endpoint gave, for documents making the same request: its row's id and text. */
type Answer = { readonly id: Promise<number>; readonly text: string };

type CallOutcome =
  | { kind: "answered"; value: unknown; usage: Usage; cost: string; answer?: Answer }
  /** This model failed for good on the document: the next model of the chain may try. */
  | { kind: "failed"; error: string; usage: Usage; cost: string; answer?: Answer }
  /** Nothing more is tried for this document (canceled, out of budget). */
  | { kind: "stop"; error: string; usage: Usage; cost: string };

/**
 * Asks `model` for the document, once per run and request: when the run is already making the
 * same request (this step or another), the document waits for that call and is answered from it
 * with a cache hit; otherwise it builds its messages again, checks they are the ones it was
 * hashed with, and makes the call, which the others making the request then share.
 */
async function sendOnce<I, O>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  doc: Document<I>,
  model: ResolvedModel,
  hash: string,
  params: Readonly<Record<string, unknown>>,
  spec: InferSpec<I, O>,
  estimator: TokenEstimator | undefined,
  tally: Tally,
): Promise<CallOutcome> {
  const free = (kind: "failed" | "stop", error: string): CallOutcome => ({
    kind,
    error,
    usage: { ...ZERO_USAGE },
    cost: "0",
  });
  for (let call = runtime.sharedRequests.get(hash); call !== undefined; ) {
    const shared = await call;
    if (shared === undefined) {
      // That call was abandoned (its step canceled): make it, unless this step is canceled too.
      if (step.signal.aborted) return free("stop", "canceled");
      call = runtime.sharedRequests.get(hash);
      continue;
    }
    if (shared.kind !== "answered") return free(shared.kind, shared.error);
    recordCacheHit(runtime, step, doc, model, hash, shared.id, shared.text, tally);
    const parsed = parseOutput(spec, shared.text, doc.item);
    if (!parsed.ok) return free("failed", parsed.error);
    return { kind: "answered", value: parsed.value, usage: { ...ZERO_USAGE }, cost: "0" };
  }
  // Built again from the item (see Document): only documents being sent hold their messages.
  // What is sent must be what was hashed, or its answer would be cached under another request.
  let messages: ReadonlyArray<ChatMessage>;
  try {
    messages = spec.messages(doc.item);
  } catch (error) {
    return free(
      "stop",
      `messages() of document "${doc.id}" threw when it was sent: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  if (!sameRequest(hash, model, messages, params)) {
    return free(
      "stop",
      `asset "${step.assetKey}": messages() of document "${doc.id}" returned different messages when it was sent than when it was checked; messages() must be deterministic`,
    );
  }
  const settle = runtime.sharedRequests.begin(hash);
  let outcome: CallOutcome | undefined;
  try {
    outcome = await callModel(runtime, step, doc, model, hash, messages, params, estimator, spec);
    return outcome;
  } finally {
    settle(sharedOutcome(outcome));
  }
}

function sameRequest(
  hash: string,
  model: ResolvedModel,
  messages: unknown,
  params: Readonly<Record<string, unknown>>,
): boolean {
  try {
    return requestHash(model.name, messages, params) === hash;
  } catch {
    return false;
  }
}

/** What the documents sharing a call learn of it; undefined: it was abandoned, make it again. */
function sharedOutcome(
  outcome: CallOutcome | undefined,
): SharedOutcome | Promise<SharedOutcome> | undefined {
  if (outcome === undefined) return undefined;
  if (outcome.kind !== "stop" && outcome.answer !== undefined) {
    // The answer is shared (each document parses it itself) once its paying row has an id.
    const { text } = outcome.answer;
    return outcome.answer.id.then(
      (id): SharedOutcome => ({ kind: "answered", id, text }),
      (error): SharedOutcome => ({
        kind: "stop",
        error: `the answer to this request could not be recorded: ${error instanceof Error ? error.message : String(error)}`,
      }),
    );
  }
  if (outcome.kind === "stop" && outcome.error === "canceled") return undefined;
  if (outcome.kind === "answered") return undefined;
  return { kind: outcome.kind, error: outcome.error };
}

/** Calls one model with retries; every answered attempt is on the ledger. */
async function callModel<I, O>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  doc: Document<I>,
  model: ResolvedModel,
  hash: string,
  messages: ReadonlyArray<ChatMessage>,
  params: Readonly<Record<string, unknown>>,
  estimator: TokenEstimator | undefined,
  spec: InferSpec<I, O>,
): Promise<CallOutcome> {
  const billed: Usage = { prompt: 0, cached: 0, completion: 0, reasoning: 0 };
  const costs: string[] = [];
  const outcome = (kind: "failed" | "stop", error: string): CallOutcome => ({
    kind,
    error,
    usage: billed,
    cost: addDecimals(costs),
  });
  const estimatedPrompt = estimator?.promptTokens(messages) ?? 0;
  const ceiling = outputCeiling(params);
  let lastError = "";
  let outageRetries = 0;
  let dispatched = false;
  const call = signalFanOut(step.signal).child();
  try {
    for (let attempt = 1; attempt <= model.maxAttempts; attempt++) {
      const refused = runtime.refused(model.endpointKey, step.stepId);
      if (refused !== undefined) {
        // The step gave up on the endpoint while this call waited to try again.
        if (dispatched) {
          record(
            runtime,
            step,
            doc,
            model,
            hash,
            failedAttempt(Math.max(1, attempt - 1), null, refused),
          );
        }
        return outcome("failed", refused);
      }
      const reservation = runtime.budget.reserve(
        callCostNanos(
          { prompt: estimatedPrompt, cached: 0, completion: ceiling },
          model.nanoPrices,
        ),
      );
      if (reservation === null) return outcome("stop", BUDGET_REASON);
      let settled: Nanos = 0n;
      const started = performance.now();
      try {
        await model.bucket.take(estimatedPrompt + ceiling, call.signal);
        // Counted on the ledger (batched) before it is sent, so if the process dies before the
        // answer is recorded, resume reports the call as lost in flight instead of hiding it. The
        // count is written while the call waits for a free slot, so it rarely holds one.
        const counted = dispatched ? undefined : runtime.ledger.recordDispatch(step.runId);
        counted?.catch(() => {});
        await model.limiter.acquire(call.signal);
        let completion: ChatCompletion;
        let headers: Headers;
        try {
          if (counted !== undefined) {
            await counted;
            dispatched = true;
          }
          const { data, response } = await model.client.chat.completions
            .create(
              { ...params, model: model.name, messages: messages as never, stream: false },
              { signal: call.signal, timeout: model.timeoutMs, maxRetries: 0 },
            )
            .withResponse();
          completion = data;
          headers = response.headers;
        } finally {
          model.limiter.release();
        }
        const latencyMs = Math.round(performance.now() - started);
        runtime.markReachable(model.endpointKey);
        const usage = readUsage(completion);
        if (typeof usage === "string") {
          // Answered, but we cannot know what it cost: a failed attempt, never a free success.
          record(runtime, step, doc, model, hash, failedAttempt(attempt, latencyMs, usage));
          lastError = usage;
          await sleep(backoffMs(attempt), undefined, { signal: call.signal }).catch(() => {});
          continue;
        }
        model.limiter.onSuccess(headers);
        billed.prompt += usage.prompt;
        billed.cached += usage.cached;
        billed.completion += usage.completion;
        billed.reasoning += usage.reasoning;
        settled = callCostNanos(usage, model.nanoPrices);
        const cost = exactCallCost(usage, model.prices);
        if (cost !== "0") costs.push(cost);
        const reply = answerText(completion);
        if (!reply.ok) {
          // Billed, but nothing to keep: a failed attempt with its tokens, never cached.
          record(runtime, step, doc, model, hash, {
            ...failedAttempt(attempt, latencyMs, reply.reason),
            usage,
            output: reply.partial === null ? null : redactSecrets(reply.partial),
          });
          lastError = reply.reason;
          if (!reply.retry) return outcome("failed", reply.reason);
          if (attempt < model.maxAttempts) {
            await sleep(backoffMs(attempt), undefined, { signal: call.signal }).catch(() => {});
          }
          continue;
        }
        // The answer as the endpoint sent it (a NUL, a lone surrogate: the ledger keeps them),
        // less any secret it echoes.
        const text = redactSecrets(reply.text);
        const parsed = parseOutput(spec, text, doc.item);
        const answer: Answer = {
          id: runtime.ledger.recordForId(
            ledgerEntry(step, doc, model, hash, {
              status: parsed.ok ? "succeeded" : "failed",
              attempts: attempt,
              usage,
              latencyMs,
              cacheHit: false,
              cachedFrom: null,
              error: parsed.ok ? null : parsed.error,
              output: text,
            }),
          ),
          text,
        };
        if (!parsed.ok) {
          return {
            kind: "failed",
            error: parsed.error,
            usage: billed,
            cost: addDecimals(costs),
            answer,
          };
        }
        return {
          kind: "answered",
          value: parsed.value,
          usage: billed,
          cost: addDecimals(costs),
          answer,
        };
      } catch (error) {
        if (error instanceof StoreError) {
          // Not sent, so nothing to record: try again once the database is back.
          lastError = error.message;
          await sleep(backoffMs(attempt), undefined, { signal: call.signal }).catch(() => {});
          continue;
        }
        const failure = classifyFailure(error);
        lastError = failure.reason;
        if (failure.kind === "aborted" || step.signal.aborted) return outcome("stop", "canceled");
        if (failure.kind === "quota") {
          runtime.markQuotaExhausted(model.endpointKey, failure.reason);
          record(runtime, step, doc, model, hash, failedAttempt(attempt, null, failure.reason));
          return outcome(
            "failed",
            `endpoint "${model.endpointKey}" is out of quota: ${failure.reason}`,
          );
        }
        if (failure.kind === "final") {
          record(runtime, step, doc, model, hash, failedAttempt(attempt, null, failure.reason));
          return outcome("failed", failure.reason);
        }
        if (failure.throttled) model.limiter.onThrottle(failure.retryAfterMs);
        if (failure.unreachable === true) {
          // An endpoint that was up and went away is retried for the outage tolerance without
          // using up attempts, so a server restart mid-run costs time, not documents; the clock
          // is the endpoint's, so once it has run out every remaining document fails at once.
          // One that never answered (not started, wrong port) is given up on within the step.
          const answered = runtime.hasAnswered(model.endpointKey);
          const downMs = Date.now() - runtime.unreachableSince(model.endpointKey);
          const verdict = unreachableVerdict({
            answered,
            refusals: answered ? 0 : runtime.noteRefusal(model.endpointKey, step.stepId),
            lastAttempt: attempt >= model.maxAttempts,
            downMs,
            outageToleranceMs: model.outageToleranceMs,
            outageRetries: outageRetries + 1,
          });
          if (verdict.kind === "retry") {
            if (!verdict.countsAsAttempt) {
              attempt -= 1;
              outageRetries += 1;
            }
            await sleep(verdict.delayMs, undefined, { signal: call.signal }).catch(() => {});
            continue;
          }
          const reason =
            verdict.kind === "refused"
              ? `endpoint "${model.endpointKey}" at ${model.endpointURL} cannot be reached: ${failure.reason}; is its server running? Start it or fix its baseURL`
              : `endpoint "${model.endpointKey}" at ${model.endpointURL} unreachable for ${Math.round(downMs / 1000)} s: ${failure.reason}`;
          if (verdict.kind === "refused")
            runtime.markRefused(model.endpointKey, step.stepId, reason);
          record(runtime, step, doc, model, hash, failedAttempt(attempt, null, reason));
          return outcome("failed", reason);
        }
        runtime.markReachable(model.endpointKey);
        if (failure.malformed === true) {
          record(
            runtime,
            step,
            doc,
            model,
            hash,
            failedAttempt(attempt, Math.round(performance.now() - started), failure.reason),
          );
        }
        if (attempt < model.maxAttempts) {
          const wait = failure.retryAfterMs ?? backoffMs(attempt);
          await sleep(wait, undefined, { signal: call.signal }).catch(() => {});
        }
      } finally {
        runtime.budget.settle(reservation, settled);
      }
    }
    // A call never sent (its dispatch could not be counted) has no outcome to record.
    if (dispatched) {
      record(runtime, step, doc, model, hash, failedAttempt(model.maxAttempts, null, lastError));
    }
    return outcome("failed", `${model.maxAttempts} attempts failed; last: ${lastError}`);
  } finally {
    call.release();
  }
}

const FAN_OUTS = new WeakMap<AbortSignal, SignalFanOut>();

/** One {@link SignalFanOut} per step signal, shared by the step's calls. */
function signalFanOut(signal: AbortSignal): SignalFanOut {
  let fanOut = FAN_OUTS.get(signal);
  if (fanOut === undefined) {
    fanOut = new SignalFanOut(signal);
    FAN_OUTS.set(signal, fanOut);
  }
  return fanOut;
}

interface CallRecord {
  readonly status: "succeeded" | "failed";
  readonly attempts: number;
  readonly usage: Usage;
  readonly latencyMs: number | null;
  readonly cacheHit: boolean;
  readonly cachedFrom: number | null;
  readonly error: string | null;
  readonly output: string | null;
}

function failedAttempt(attempts: number, latencyMs: number | null, error: string): CallRecord {
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

function record<I>(
  runtime: InferenceRuntime,
  step: FanOutStep,
  doc: Document<I>,
  model: ResolvedModel,
  hash: string,
  call: CallRecord,
): void {
  runtime.ledger.record(ledgerEntry(step, doc, model, hash, call));
}

function ledgerEntry<I>(
  step: FanOutStep,
  doc: Document<I>,
  model: ResolvedModel,
  hash: string,
  call: CallRecord,
): LedgerEntry {
  return {
    runId: step.runId,
    materializationId: step.materializationId,
    assetKey: step.assetKey,
    partitionKey: step.partitionKey,
    documentId: doc.id,
    model: model.key,
    providerModel: model.name,
    endpoint: model.endpointKey,
    requestHash: hash,
    status: call.status,
    attempts: call.attempts,
    promptTokens: call.usage.prompt,
    cachedTokens: call.usage.cached,
    completionTokens: call.usage.completion,
    reasoningTokens: call.usage.reasoning,
    inputPricePerMTok: model.prices.input,
    cachedInputPricePerMTok: model.prices.cachedInput,
    outputPricePerMTok: model.prices.output,
    latencyMs: call.latencyMs,
    cacheHit: call.cacheHit,
    cachedFrom: call.cachedFrom,
    error: call.error,
    output: call.output,
  };
}

/** The usage of a completion, or why it cannot be trusted. */
function readUsage(completion: ChatCompletion): Usage | string {
  if (completion === null || typeof completion !== "object" || !Array.isArray(completion.choices)) {
    return "the response is not a chat completion";
  }
  const usage = completion.usage;
  if (usage === undefined || usage === null) return "the response has no usage";
  const prompt = usage.prompt_tokens;
  const completionTokens = usage.completion_tokens;
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  const reasoning = usage.completion_tokens_details?.reasoning_tokens ?? 0;
  for (const [name, value] of [
    ["prompt_tokens", prompt],
    ["completion_tokens", completionTokens],
    ["cached_tokens", cached],
    ["reasoning_tokens", reasoning],
  ] as const) {
    if (
      typeof value !== "number" ||
      !Number.isSafeInteger(value) ||
      value < 0 ||
      value > MAX_REPORTED_TOKENS
    ) {
      return `the response reports an impossible ${name} (${String(value)})`;
    }
  }
  if (cached > prompt)
    return `the response reports more cached_tokens (${cached}) than prompt_tokens (${prompt})`;
  return { prompt, cached, completion: completionTokens, reasoning };
}

function parseOutput<I, O>(
  spec: InferSpec<I, O>,
  text: string,
  item: I,
): { ok: true; value: O | string } | { ok: false; error: string } {
  if (spec.parse === undefined) return { ok: true, value: text };
  try {
    return { ok: true, value: spec.parse(text, item) };
  } catch (error) {
    return {
      ok: false,
      error: redactSecrets(
        `parse failed: ${error instanceof Error ? error.message : String(error)}`,
      ),
    };
  }
}

function checkSpec<I, O>(assetKey: string, items: ReadonlyArray<I>, spec: InferSpec<I, O>): void {
  if (!Array.isArray(items)) {
    throw new StrataError(
      "bad_value",
      `asset "${assetKey}" passed ctx.infer something that is not an array of documents`,
    );
  }
  if (spec === null || typeof spec !== "object") {
    throw new StrataError(
      "bad_usage",
      `asset "${assetKey}" called ctx.infer without a spec { model, id, messages }`,
    );
  }
  for (const name of ["id", "messages"] as const) {
    if (typeof spec[name] !== "function") {
      throw new StrataError(
        "bad_usage",
        `asset "${assetKey}" called ctx.infer without a "${name}" function`,
      );
    }
  }
  if (
    spec.maxFailures !== undefined &&
    (!Number.isInteger(spec.maxFailures) || spec.maxFailures < 0)
  ) {
    throw new StrataError(
      "bad_usage",
      `asset "${assetKey}" set maxFailures to ${spec.maxFailures}; use a whole number ≥ 0`,
    );
  }
}

/**
 * Checks every document before anything is sent (a unique string id, at least one message) and
 * computes its request hash for each model of the chain; the messages themselves are dropped.
 */
function documentsOf<I, O>(
  assetKey: string,
  items: ReadonlyArray<I>,
  spec: InferSpec<I, O>,
  chain: ReadonlyArray<ResolvedModel>,
  params: Readonly<Record<string, unknown>>,
): ReadonlyArray<Document<I>> {
  const seen = new Set<string>();
  return items.map((item, index) => {
    const id = spec.id(item);
    if (typeof id !== "string" || id === "") {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": document ${index} has ${id === "" ? "an empty" : "no string"} id; id() must return a non-empty string`,
      );
    }
    if (seen.has(id)) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": document id "${id}" appears twice; ids must be unique within one step (the checkpoint is per document)`,
      );
    }
    seen.add(id);
    let messages: ReadonlyArray<ChatMessage>;
    try {
      messages = spec.messages(item);
    } catch (error) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": messages() of document "${id}" threw: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": messages() for document "${id}" returned no messages; return [{ role: "user", content: "..." }]`,
      );
    }
    let hashes: string[];
    try {
      hashes = chain.map((model) => requestHash(model.name, messages, params));
    } catch (error) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": messages() of document "${id}" returned messages that cannot be sent as JSON: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    return { index, item, id, hashes };
  });
}

function progressReporter(
  runtime: InferenceRuntime,
  step: FanOutStep,
  total: number,
  tally: Tally,
) {
  let last = 0;
  return (force = false) => {
    if (runtime.onProgress === undefined) return;
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    runtime.onProgress({
      stepId: step.stepId,
      total,
      done: tally.done,
      failed: tally.failed,
      cacheHits: tally.cacheHits,
      promptTokens: tally.promptTokens,
      completionTokens: tally.completionTokens,
      costUsd: tally.cost,
    });
  };
}
