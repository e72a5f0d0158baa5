import { setTimeout as sleep } from "node:timers/promises";
import type { ChatCompletion } from "openai/resources/chat/completions";
import { StoreError } from "../errors.js";
import { callCost, type Femtos } from "../util/decimal.js";
import { redactSecrets } from "../util/redactor.js";
import { answerText } from "./answer-text.js";
import {
  attemptFailureKind,
  attemptsExhausted,
  BUDGET_EXCEEDED,
  CANCELED,
  type InferenceFailure,
  type InferenceFailureKind,
  inferenceFailure,
} from "./inference-failure.js";
import type { InferenceRequest } from "./inference-request.js";
import type { InferenceRuntime, ResolvedModel } from "./inference-runtime.js";
import type { InferenceStep } from "./inference-step.js";
import {
  type CallRecord,
  type CallSite,
  failedAttempt,
  ledgerEntry,
  recordCall,
} from "./ledger-entry.js";
import type { ParsedAnswer } from "./parse-answer.js";
import { addUsage, readUsage, type Usage, ZERO_USAGE } from "./read-usage.js";
import {
  type AttemptFailure,
  type AttemptState,
  classifyFailure,
  type GiveUpReason,
  nextAttempt,
} from "./retry-policy.js";
import { signalFanOut } from "./signal-fan-out.js";

/** An answer the endpoint gave, for documents making the same request: its row's id and text. */
export interface SharedAnswer {
  readonly id: Promise<number>;
  readonly text: string;
}

/**
 * What a model made of a document: its value, or the failure that ended the call, with the
 * tokens and cost of every attempt the endpoint billed, and the answer to share (when one came).
 */
export type CallOutcome =
  | {
      readonly kind: "answered";
      readonly value: unknown;
      readonly usage: Usage;
      readonly cost: Femtos;
      readonly answer?: SharedAnswer;
    }
  | {
      readonly kind: "failed";
      readonly failure: InferenceFailure;
      readonly usage: Usage;
      readonly cost: Femtos;
      readonly answer?: SharedAnswer;
    };

/** One document's request to one model, as {@link callModel} sends it. */
export interface ModelRequest {
  readonly documentId: string;
  readonly model: ResolvedModel;
  readonly request: InferenceRequest;
  /** The prompt's estimated tokens (0 when nothing needs an estimate). */
  readonly estimatedPromptTokens: number;
  /** The most output tokens the request may produce (its `max_tokens`, or the default). */
  readonly outputCeiling: number;
  /** The answer's value, or its `parse` failure. */
  readonly parse: (text: string) => ParsedAnswer<unknown>;
}

/** One attempt's result: the call's outcome, or a failure for the retry policy to judge. */
type AttemptResult =
  | { readonly kind: "done"; readonly outcome: CallOutcome }
  | {
      readonly kind: "failed";
      readonly failure: AttemptFailure;
      /** Its kind as the document's failure, should the call give up on it. */
      readonly as: InferenceFailureKind;
      /** The attempt's row is on the ledger already (it came with latency, or tokens). */
      readonly recorded: boolean;
    };

/**
 * Calls one model for one document with retries, as the model's {@link RetryPolicy} decides;
 * every answered attempt is on the ledger, and every attempt reserves its upper-bound cost on the
 * run's budget first and settles it to what the endpoint billed.
 *
 * @example
 * const outcome = await callModel(runtime, step, { documentId, model, request, estimatedPromptTokens, outputCeiling, parse });
 */
export function callModel(
  runtime: InferenceRuntime,
  step: InferenceStep,
  request: ModelRequest,
): Promise<CallOutcome> {
  return new ModelCall(runtime, step, request).run();
}

class ModelCall {
  readonly #runtime: InferenceRuntime;
  readonly #step: InferenceStep;
  readonly #request: ModelRequest;
  readonly #model: ResolvedModel;
  readonly #site: CallSite;
  /** The upper bound of one attempt's cost: its prompt estimate and the output ceiling. */
  readonly #estimate: Femtos;
  #billed: Usage = ZERO_USAGE;
  #cost: Femtos = 0n;
  /** What the current attempt cost: its budget reservation is settled to it. */
  #settled: Femtos = 0n;
  #dispatched = false;
  #outageRetries = 0;

  constructor(runtime: InferenceRuntime, step: InferenceStep, request: ModelRequest) {
    this.#runtime = runtime;
    this.#step = step;
    this.#request = request;
    this.#model = request.model;
    this.#site = {
      step,
      documentId: request.documentId,
      model: request.model,
      hash: request.request.hash,
    };
    this.#estimate = callCost(
      { prompt: request.estimatedPromptTokens, cached: 0, completion: request.outputCeiling },
      request.model.prices,
    );
  }

  async run(): Promise<CallOutcome> {
    const { budget } = this.#runtime;
    const policy = this.#model.retry;
    const call = signalFanOut(this.#step.signal).child();
    try {
      for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
        const refused = this.#runtime.refused(this.#model.endpointKey, this.#step.stepId);
        if (refused !== undefined) {
          // The step gave up on the endpoint while this call waited to try again.
          if (this.#dispatched) {
            this.#record(failedAttempt(Math.max(1, attempt - 1), null, refused));
          }
          return this.#failed(inferenceFailure("refused", refused));
        }
        const reservation = budget.reserve(this.#estimate);
        if (reservation === null) return this.#failed(BUDGET_EXCEEDED);
        this.#settled = 0n;
        try {
          const result = await this.#attempt(attempt, call.signal);
          if (result.kind === "done") return result.outcome;
          const state: AttemptState = {
            attempt,
            outageRetries: this.#outageRetries,
            outage: this.#outage(result.failure),
          };
          const next = nextAttempt(policy, state, result.failure);
          if (next.kind === "give-up") return this.#giveUp(next.reason, state, result);
          if (!next.countsAsAttempt) {
            attempt -= 1;
            this.#outageRetries += 1;
          }
          await sleep(next.delayMs, undefined, { signal: call.signal }).catch(() => {});
        } finally {
          budget.settle(reservation, this.#settled);
        }
      }
      // Not reached: the policy gives up at the last attempt.
      return this.#failed(
        attemptsExhausted(policy.maxAttempts, inferenceFailure("http", "no attempt was made")),
      );
    } finally {
      call.release();
    }
  }

  async #attempt(attempt: number, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    try {
      const { completion, headers } = await this.#send(signal);
      return this.#read(completion, headers, attempt, Math.round(performance.now() - started));
    } catch (error) {
      return this.#failure(error, attempt, started);
    }
  }

  async #send(signal: AbortSignal): Promise<{ completion: ChatCompletion; headers: Headers }> {
    const model = this.#model;
    await model.bucket.take(
      this.#request.estimatedPromptTokens + this.#request.outputCeiling,
      signal,
    );
    // Counted on the ledger (batched) before it is sent, so if the process dies before the
    // answer is recorded, resume reports the call as lost in flight instead of hiding it. The
    // count is written while the call waits for a free slot, so it rarely holds one.
    const counted = this.#dispatched
      ? undefined
      : this.#runtime.ledger.recordDispatch(this.#step.runId);
    counted?.catch(() => {});
    await model.limiter.acquire(signal);
    try {
      if (counted !== undefined) {
        await counted;
        this.#dispatched = true;
      }
      const { data, response } = await model.client.chat.completions
        .create(this.#request.request.body, { signal, timeout: model.timeoutMs, maxRetries: 0 })
        .withResponse();
      return { completion: data, headers: response.headers };
    } finally {
      model.limiter.release();
    }
  }

  /** An answered attempt: its usage, its text, its value; each step may fail it. */
  #read(
    completion: ChatCompletion,
    headers: Headers,
    attempt: number,
    latencyMs: number,
  ): AttemptResult {
    this.#runtime.markReachable(this.#model.endpointKey);
    const read = readUsage(completion);
    if (!read.ok) {
      // Answered, but we cannot know what it cost: a failed attempt, never a free success.
      this.#record(failedAttempt(attempt, latencyMs, read.failure.message));
      return retryable(read.failure);
    }
    const { usage } = read;
    this.#model.limiter.onSuccess(headers);
    this.#billed = addUsage(this.#billed, usage);
    this.#settled = callCost(usage, this.#model.prices);
    this.#cost += this.#settled;
    const reply = answerText(completion);
    if (!reply.ok) {
      // Billed, but nothing to keep: a failed attempt with its tokens, never cached.
      this.#record({
        ...failedAttempt(attempt, latencyMs, reply.reason),
        usage,
        output: reply.partial === null ? null : redactSecrets(reply.partial),
      });
      if (reply.retry) return retryable(inferenceFailure("unreadable", reply.reason));
      return {
        kind: "failed",
        failure: { kind: "final", reason: reply.reason },
        as: "unreadable",
        recorded: true,
      };
    }
    // The answer as the endpoint sent it (a NUL, a lone surrogate: the ledger keeps them),
    // less any secret it echoes.
    const text = redactSecrets(reply.text);
    const parsed = this.#request.parse(text);
    const row: CallRecord = {
      status: parsed.ok ? "succeeded" : "failed",
      attempts: attempt,
      usage,
      latencyMs,
      cacheHit: false,
      cachedFrom: null,
      error: parsed.ok ? null : parsed.failure.message,
      output: text,
    };
    const answer = { id: this.#runtime.ledger.recordForId(ledgerEntry(this.#site, row)), text };
    const spent = { usage: this.#billed, cost: this.#cost, answer };
    return {
      kind: "done",
      outcome: parsed.ok
        ? { kind: "answered", value: parsed.value, ...spent }
        : { kind: "failed", failure: parsed.failure, ...spent },
    };
  }

  /** An attempt that threw: not sent (the database), or what the endpoint did. */
  #failure(error: unknown, attempt: number, started: number): AttemptResult {
    if (error instanceof StoreError) {
      // Not sent, so nothing to record: try again once the database is back.
      return retryable(inferenceFailure("store", error.message));
    }
    const failure: AttemptFailure = this.#step.signal.aborted
      ? { kind: "aborted", reason: "canceled" }
      : classifyFailure(error);
    if (failure.kind === "retry") {
      if (failure.throttled) this.#model.limiter.onThrottle(failure.retryAfterMs);
      if (failure.unreachable !== true) {
        this.#runtime.markReachable(this.#model.endpointKey);
        if (failure.malformed === true) {
          const latencyMs = Math.round(performance.now() - started);
          this.#record(failedAttempt(attempt, latencyMs, failure.reason));
        }
      }
    }
    return { kind: "failed", failure, as: attemptFailureKind(failure), recorded: false };
  }

  /**
   * The endpoint's outage state, for a failure to reach it: whether it has answered in this run,
   * this step's refusals (counting this one) and its outage clock.
   */
  #outage(failure: AttemptFailure): AttemptState["outage"] {
    if (failure.kind !== "retry" || failure.unreachable !== true) return undefined;
    const key = this.#model.endpointKey;
    const answered = this.#runtime.hasAnswered(key);
    const downMs = Date.now() - this.#runtime.unreachableSince(key);
    const refusals = answered ? 0 : this.#runtime.noteRefusal(key, this.#step.stepId);
    return { answered, refusals, downMs };
  }

  #giveUp(
    reason: GiveUpReason,
    state: AttemptState,
    result: Extract<AttemptResult, { kind: "failed" }>,
  ): CallOutcome {
    const { endpointKey, endpointURL } = this.#model;
    const why = result.failure.reason;
    switch (reason) {
      case "canceled":
        return this.#failed(CANCELED);
      case "quota":
        this.#runtime.markQuotaExhausted(endpointKey, why);
        this.#record(failedAttempt(state.attempt, null, why));
        return this.#failed(
          inferenceFailure("quota", `endpoint "${endpointKey}" is out of quota: ${why}`),
        );
      case "final":
        if (!result.recorded) this.#record(failedAttempt(state.attempt, null, why));
        return this.#failed(inferenceFailure(result.as, why));
      case "refused": {
        const message = `endpoint "${endpointKey}" at ${endpointURL} cannot be reached: ${why}; is its server running? Start it or fix its baseURL`;
        this.#runtime.markRefused(endpointKey, this.#step.stepId, message);
        this.#record(failedAttempt(state.attempt, null, message));
        return this.#failed(inferenceFailure("refused", message));
      }
      case "down": {
        const downS = Math.round((state.outage?.downMs ?? 0) / 1000);
        const message = `endpoint "${endpointKey}" at ${endpointURL} unreachable for ${downS} s: ${why}`;
        this.#record(failedAttempt(state.attempt, null, message));
        return this.#failed(inferenceFailure("unreachable", message));
      }
      case "attempts": {
        const { maxAttempts } = this.#model.retry;
        // A call never sent (its dispatch could not be counted) has no outcome to record.
        if (this.#dispatched) this.#record(failedAttempt(maxAttempts, null, why));
        return this.#failed(attemptsExhausted(maxAttempts, inferenceFailure(result.as, why)));
      }
    }
  }

  #failed(failure: InferenceFailure): CallOutcome {
    return { kind: "failed", failure, usage: this.#billed, cost: this.#cost };
  }

  #record(call: CallRecord): void {
    recordCall(this.#runtime, this.#site, call);
  }
}

/** A failed attempt that another attempt may well get past (its row, if any, is recorded). */
function retryable(failure: InferenceFailure): AttemptResult {
  return {
    kind: "failed",
    failure: { kind: "retry", reason: failure.message, retryAfterMs: null, throttled: false },
    as: failure.kind === "exhausted" ? "http" : failure.kind,
    recorded: true,
  };
}
