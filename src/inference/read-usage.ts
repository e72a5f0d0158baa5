import type { ChatCompletion } from "openai/resources/chat/completions";
import { type InferenceFailure, inferenceFailure } from "./inference-failure.js";

/** Token counts of one call, as the ledger records them. */
export interface Usage {
  readonly prompt: number;
  /** Part of `prompt` (OpenAI usage semantics). */
  readonly cached: number;
  readonly completion: number;
  readonly reasoning: number;
}

/** No tokens: a cache hit, or a call that was never answered. */
export const ZERO_USAGE: Usage = Object.freeze({
  prompt: 0,
  cached: 0,
  completion: 0,
  reasoning: 0,
});

/** Bounds on token counts an endpoint may report for one call; past them the answer is refused. */
const MAX_REPORTED_TOKENS = 50_000_000;

/**
 * The usage of a completion, or why it cannot be trusted (an `unreadable` failure): a response
 * that is not a completion, that has no usage, or whose counts are impossible.
 *
 * @example
 * const usage = readUsage(completion);
 * if (!usage.ok) retry(usage.failure);
 */
export function readUsage(
  completion: ChatCompletion,
):
  | { readonly ok: true; readonly usage: Usage }
  | { readonly ok: false; readonly failure: InferenceFailure } {
  if (completion === null || typeof completion !== "object" || !Array.isArray(completion.choices)) {
    return unreadable("the response is not a chat completion");
  }
  const usage = completion.usage;
  if (usage === undefined || usage === null) return unreadable("the response has no usage");
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
      return unreadable(`the response reports an impossible ${name} (${String(value)})`);
    }
  }
  if (cached > prompt) {
    return unreadable(
      `the response reports more cached_tokens (${cached}) than prompt_tokens (${prompt})`,
    );
  }
  return { ok: true, usage: { prompt, cached, completion: completionTokens, reasoning } };
}

function unreadable(message: string): { readonly ok: false; readonly failure: InferenceFailure } {
  return { ok: false, failure: inferenceFailure("unreadable", message) };
}

/** The sum of two usages. */
export function addUsage(a: Usage, b: Usage): Usage {
  return {
    prompt: a.prompt + b.prompt,
    cached: a.cached + b.cached,
    completion: a.completion + b.completion,
    reasoning: a.reasoning + b.reasoning,
  };
}
