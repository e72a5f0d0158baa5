import type { IncomingMessage, ServerResponse } from "node:http";
import type { SimUsage } from "./chat-completion.js";
import { completionJson, streamEvents } from "./chat-completion.js";
import type { ChatRequest } from "./chat-request.js";
import { parseChatRequest } from "./chat-request.js";
import type { DeterministicText, GeneratedText } from "./deterministic-text.js";
import { PrefixCache } from "./prefix-cache.js";
import { RequestRateLimiter, rateLimitHeaders } from "./rate-limiter.js";
import { hashTokens, SeededRandom } from "./seeded-random.js";
import { sendError, sendJson, startEventStream } from "./send-json.js";
import { SimHttpError } from "./sim-http-error.js";
import type { SimLedger } from "./sim-ledger.js";
import type { SimTokenizer } from "./sim-tokenizer.js";
import type { ResolvedSimulatorOptions } from "./simulator-options.js";

/** Streamed tokens are written in batches at most this often, so a stream costs few timers. */
const MIN_STREAM_TICK_MS = 10;

/**
 * Answers `POST /v1/chat/completions`: validates, injects the configured faults, generates a
 * deterministic completion, waits out the simulated latency and bills what it delivered.
 *
 * Checks run in this order: API key (401), body (400), model (404), quota (429
 * `insufficient_quota`), rate limit (429 `rate_limit_exceeded`), context window (400
 * `context_length_exceeded`); then one seeded roll picks at most one of error (500), timeout (no
 * answer) and malformed (200, not JSON), with probabilities `errorRate`, `timeoutRate` and
 * `malformedRate` taken in that order.
 *
 * @example
 * const handler = new CompletionHandler({ tokenizer, text, ledger, options });
 * handler.handle(req, res, body);
 */
export class CompletionHandler {
  readonly #tokenizer: SimTokenizer;
  readonly #text: DeterministicText;
  readonly #ledger: SimLedger;
  readonly #prefixCache: PrefixCache;
  readonly #inflight = new Set<() => void>();
  readonly #seenModels = new Set<string>();
  #options: ResolvedSimulatorOptions;
  #random: SeededRandom;
  #limiter: RequestRateLimiter | undefined;
  #counter = 0;

  constructor(parts: {
    tokenizer: SimTokenizer;
    text: DeterministicText;
    ledger: SimLedger;
    options: ResolvedSimulatorOptions;
  }) {
    this.#tokenizer = parts.tokenizer;
    this.#text = parts.text;
    this.#ledger = parts.ledger;
    this.#options = parts.options;
    this.#prefixCache = new PrefixCache(parts.options.prefixCache);
    this.#random = new SeededRandom(parts.options.seed);
    this.#limiter = makeLimiter(parts.options.rateLimitRpm);
  }

  /** Applies new options; the generator is reseeded and the limiter refilled only when theirs change. */
  setOptions(options: ResolvedSimulatorOptions): void {
    if (options.seed !== this.#options.seed) this.#random = new SeededRandom(options.seed);
    if (options.rateLimitRpm !== this.#options.rateLimitRpm) {
      this.#limiter = makeLimiter(options.rateLimitRpm);
    }
    this.#options = options;
  }

  /** The model names requested so far (at most 1,000), for `GET /v1/models`. */
  seenModels(): ReadonlyArray<string> {
    return [...this.#seenModels];
  }

  /** Forgets every cached prefix. */
  clearPrefixCache(): void {
    this.#prefixCache.clear();
  }

  /** Cancels every pending answer (their sockets are closed by the server). */
  cancelAll(): void {
    for (const cancel of this.#inflight) cancel();
    this.#inflight.clear();
  }

  /** Answers one request whose body has been read. */
  handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    this.#ledger.count("total");
    const options = this.#options;
    const requestId = `req_sim_${++this.#counter}`;
    let headers: Record<string, string> = { "x-request-id": requestId };
    try {
      if (
        options.apiKey !== undefined &&
        req.headers.authorization !== `Bearer ${options.apiKey}`
      ) {
        throw SimHttpError.unauthorized(req.headers.authorization !== undefined);
      }
      const request = parseChatRequest(body);
      if (options.models !== undefined && !options.models.includes(request.model)) {
        throw SimHttpError.modelNotFound(request.model, options.models);
      }
      if (this.#seenModels.size < 1000) this.#seenModels.add(request.model);
      if (options.quotaExhausted) {
        throw SimHttpError.quotaExhausted();
      }
      if (this.#limiter !== undefined) {
        const decision = this.#limiter.take(Date.now());
        headers = { ...headers, ...rateLimitHeaders(decision) };
        if (!decision.allowed) throw SimHttpError.rateLimited(request.model, decision);
      }
      const promptTokens = this.#tokenizer.encodeChat(request.messages);
      if (promptTokens.length > options.contextWindow) {
        throw SimHttpError.contextLengthExceeded(options.contextWindow, promptTokens.length);
      }
      this.#answer(res, request, promptTokens, headers, requestId);
    } catch (error) {
      if (!(error instanceof SimHttpError)) throw error;
      this.#countError(error);
      sendError(res, error, headers);
    }
  }

  #answer(
    res: ServerResponse,
    request: ChatRequest,
    promptTokens: ReadonlyArray<number>,
    headers: Record<string, string>,
    requestId: string,
  ): void {
    const options = this.#options;
    const roll = this.#random.next();
    const jitter = options.jitterMs > 0 ? this.#random.next() * options.jitterMs : 0;
    const firstDelay = options.latencyMs + jitter;

    if (roll < options.errorRate) {
      this.#ledger.count("errors");
      this.#after(res, firstDelay, () => sendError(res, SimHttpError.serverError(), headers));
      return;
    }
    if (roll < options.errorRate + options.timeoutRate) {
      // never answered: the socket stays open until the client gives up or the server closes
      this.#ledger.count("timedOut");
      return;
    }
    const malformed = roll < options.errorRate + options.timeoutRate + options.malformedRate;

    const usage = this.#usage(request, promptTokens);
    const choices = usage.choices;
    const longest = Math.max(...choices.map((choice) => choice.completionTokens));
    const meta = {
      id: `chatcmpl-sim-${requestId.slice(8)}`,
      created: nowSeconds(),
      model: request.model,
    };
    const perToken = options.perTokenLatencyMs;

    if (malformed) {
      this.#ledger.count("malformed");
      const truncated = completionJson(meta, choices, usage).slice(0, 120);
      this.#after(res, firstDelay + perToken * longest, () => {
        if (!request.stream) return sendJson(res, 200, truncated, headers);
        startEventStream(res, headers);
        res.end(`data: ${truncated}\n\ndata: [DONE]\n\n`);
      });
      return;
    }
    if (!request.stream) {
      const body = completionJson(meta, choices, usage);
      this.#after(res, firstDelay + perToken * longest, () => {
        sendJson(res, 200, body, headers);
        this.#bill(request.model, usage);
      });
      return;
    }
    const events = streamEvents(meta, choices, usage, request.includeUsage);
    this.#after(res, firstDelay, () => {
      startEventStream(res, headers);
      this.#stream(res, events, perToken * longest, () => this.#bill(request.model, usage));
    });
  }

  #usage(
    request: ChatRequest,
    promptTokens: ReadonlyArray<number>,
  ): SimUsage & { choices: GeneratedText[] } {
    const options = this.#options;
    const cachedTokens = this.#prefixCache.match(request.model, promptTokens);
    const promptHash = hashTokens(promptTokens);
    const room = options.contextWindow - promptTokens.length;
    const limit = Math.min(request.maxTokens ?? room, room);
    const choices: GeneratedText[] = [];
    let completionTokens = 0;
    for (let choiceIndex = 0; choiceIndex < request.n; choiceIndex++) {
      const choice = this.#text.generate({
        seed: options.seed,
        promptHash,
        choiceIndex,
        minTokens: options.minOutputTokens,
        maxTokens: options.maxOutputTokens,
        limit,
      });
      choices.push(choice);
      completionTokens += choice.completionTokens;
    }
    return { promptTokens: promptTokens.length, cachedTokens, completionTokens, choices };
  }

  /** Writes the stream's events spread evenly over `durationMs`, then ends it and calls `done`. */
  #stream(
    res: ServerResponse,
    events: ReadonlyArray<string>,
    durationMs: number,
    done: () => void,
  ): void {
    if (durationMs <= 0 || events.length <= 2) {
      res.end(events.join(""));
      done();
      return;
    }
    const gaps = events.length - 1;
    const startedAt = performance.now();
    let written = 0;
    const tick = (): void => {
      const elapsed = performance.now() - startedAt;
      const due = Math.min(events.length, 1 + Math.floor((elapsed / durationMs) * gaps));
      if (due > written) {
        const batch = events.slice(written, due).join("");
        written = due;
        if (written === events.length) {
          res.end(batch);
          done();
          return;
        }
        res.write(batch);
      }
      this.#after(res, Math.max(MIN_STREAM_TICK_MS, durationMs / gaps), tick);
    };
    tick();
  }

  /** Runs `fn` after `delayMs` unless the client leaves first (then counted as aborted). */
  #after(res: ServerResponse, delayMs: number, fn: () => void): void {
    const cancel = (): void => {
      clearTimeout(timer);
      this.#inflight.delete(cancel);
    };
    const onClose = (): void => {
      cancel();
      if (!res.writableFinished) this.#ledger.count("aborted");
    };
    const timer = setTimeout(() => {
      cancel();
      res.off("close", onClose);
      if (res.destroyed) return;
      fn();
    }, delayMs);
    this.#inflight.add(cancel);
    res.once("close", onClose);
  }

  #bill(model: string, usage: SimUsage): void {
    this.#ledger.bill(model, {
      promptTokens: usage.promptTokens,
      cachedTokens: usage.cachedTokens,
      completionTokens: usage.completionTokens,
    });
  }

  #countError(error: SimHttpError): void {
    if (error.status === 401) this.#ledger.count("unauthorized");
    else if (error.status === 404) this.#ledger.count("notFound");
    else if (error.code === "insufficient_quota") this.#ledger.count("quotaExhausted");
    else if (error.status === 429) this.#ledger.count("rateLimited");
    else if (error.status === 400) this.#ledger.count("badRequests");
  }
}

function makeLimiter(rpm: number): RequestRateLimiter | undefined {
  return rpm > 0 ? new RequestRateLimiter(rpm, Date.now()) : undefined;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
