import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import type { ChatMessage } from "../assets/asset-context.js";
import { requestHash } from "./request-hash.js";

/** A chat completion request as strata sends it, and the hash that names it. */
export interface InferenceRequest {
  /** The body of `chat.completions.create`: the params, the model's name, the messages. */
  readonly body: ChatCompletionCreateParamsNonStreaming;
  /** The cache and checkpoint key of the request (see `requestHash`). */
  readonly hash: string;
}

/**
 * Builds the request a document makes of a model: the body sent to `chat.completions.create`
 * (`params`, then the provider model's name, the messages and `stream: false`) and its hash. The
 * fan-out, which sends it, and the dry run, which counts what a run would send, both build it
 * here, so they name a request by the same hash. Throws when the messages cannot be sent as JSON.
 *
 * @example
 * const { body, hash } = buildRequest("qwen3-8b", [{ role: "user", content: "hi" }], requestParams({ max_tokens: 16 }));
 */
export function buildRequest(
  providerModel: string,
  messages: ReadonlyArray<ChatMessage>,
  params: Readonly<Record<string, unknown>>,
): InferenceRequest {
  return {
    body: {
      ...params,
      model: providerModel,
      messages: messages as ChatCompletionCreateParamsNonStreaming["messages"],
      stream: false,
    },
    hash: requestHash(providerModel, messages, params),
  };
}

/**
 * The params a request is sent and hashed with: the spec's `params` less the fields strata sets
 * itself (`model`, `messages`, `stream`). Computed once per step, for {@link buildRequest}.
 *
 * @example
 * requestParams({ max_tokens: 16, stream: true }); // { max_tokens: 16 }
 */
export function requestParams(
  params: Readonly<Record<string, unknown>> | undefined,
): Record<string, unknown> {
  const { model: _model, messages: _messages, stream: _stream, ...rest } = params ?? {};
  return rest;
}
