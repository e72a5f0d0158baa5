import type { GeneratedText } from "./deterministic-text.js";

/**
 * The `system_fingerprint` of every simulated response.
 *
 * @example
 * completion.system_fingerprint === SIM_FINGERPRINT; // true for the simulator's answers
 */
export const SIM_FINGERPRINT = "strata-sim";

/**
 * The token counts of one simulated call; `promptTokens` includes `cachedTokens`.
 *
 * @example
 * const usage: SimUsage = { promptTokens: 1200, cachedTokens: 1024, completionTokens: 40 };
 */
export interface SimUsage {
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
}

/**
 * What identifies a response: its id, creation time (seconds) and the model named.
 *
 * @example
 * const meta: CompletionMeta = { id: "chatcmpl-sim-1", created: 1_700_000_000, model: "m" };
 */
export interface CompletionMeta {
  readonly id: string;
  readonly created: number;
  readonly model: string;
}

/**
 * The `usage` object as OpenAI sends it, with the details objects the `openai` types declare.
 *
 * @example
 * usageJson({ promptTokens: 10, cachedTokens: 0, completionTokens: 5 }).total_tokens; // 15
 */
export function usageJson(usage: SimUsage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    prompt_tokens_details: { cached_tokens: usage.cachedTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/**
 * The body of a non-streaming `chat.completion` response.
 *
 * @example
 * const body = completionJson(meta, [generated], usage); // a JSON string
 */
export function completionJson(
  meta: CompletionMeta,
  choices: ReadonlyArray<GeneratedText>,
  usage: SimUsage,
): string {
  return JSON.stringify({
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    system_fingerprint: SIM_FINGERPRINT,
    service_tier: "default",
    choices: choices.map((choice, index) => ({
      index,
      message: { role: "assistant", content: choice.text, refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: choice.finishReason,
    })),
    usage: usageJson(usage),
  });
}

/**
 * The server-sent events of a streamed completion, in order: per choice a role chunk, one chunk
 * per token and a finish chunk; then, when `includeUsage`, a chunk with the usage and no choices;
 * then `data: [DONE]`. Chunks carry `"usage": null` when the usage chunk will follow, as OpenAI's do.
 *
 * @example
 * const events = streamEvents(meta, [generated], usage, true);
 * events.at(-1); // "data: [DONE]\n\n"
 */
export function streamEvents(
  meta: CompletionMeta,
  choices: ReadonlyArray<GeneratedText>,
  usage: SimUsage,
  includeUsage: boolean,
): string[] {
  // every chunk shares its head; building it once keeps per-token work to one small string
  const head =
    `data: {"id":${JSON.stringify(meta.id)},"object":"chat.completion.chunk",` +
    `"created":${meta.created},"model":${JSON.stringify(meta.model)},` +
    `"system_fingerprint":"${SIM_FINGERPRINT}","service_tier":"default","choices":[{"index":`;
  const tail = includeUsage ? `}],"usage":null}\n\n` : `}]}\n\n`;
  const events: string[] = [];
  choices.forEach((choice, index) => {
    events.push(
      `${head}${index},"delta":{"role":"assistant","content":"","refusal":null},` +
        `"logprobs":null,"finish_reason":null${tail}`,
    );
    for (const piece of choice.pieces) {
      events.push(
        `${head}${index},"delta":{"content":${JSON.stringify(piece)}},"logprobs":null,"finish_reason":null${tail}`,
      );
    }
    events.push(
      `${head}${index},"delta":{},"logprobs":null,"finish_reason":"${choice.finishReason}"${tail}`,
    );
  });
  if (includeUsage) {
    events.push(
      `data: ${JSON.stringify({
        id: meta.id,
        object: "chat.completion.chunk",
        created: meta.created,
        model: meta.model,
        system_fingerprint: SIM_FINGERPRINT,
        service_tier: "default",
        choices: [],
        usage: usageJson(usage),
      })}\n\n`,
    );
  }
  events.push("data: [DONE]\n\n");
  return events;
}
