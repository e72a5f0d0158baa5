import type { ChatMessage } from "../assets/asset-context.js";
import { loadO200kTokenizer } from "../util/tiktoken.js";

/** Tokens a chat format adds per message (role markers), and to prime the reply. */
const PER_MESSAGE = 4;
const REPLY_PRIMING = 3;

/** Output tokens assumed for a request that sets no `max_tokens`, for estimates and budgets. */
export const DEFAULT_OUTPUT_CEILING = 4_096;

/**
 * Counts prompt tokens the way OpenAI's chat models do (o200k_base plus per-message overhead),
 * with js-tiktoken loaded on first use. Other models' tokenizers differ a little: this is an
 * estimate for rate limits, budgets and dry runs, never what the ledger records.
 *
 * @example
 * const estimate = await loadTokenEstimator();
 * estimate.promptTokens([{ role: "user", content: "hello" }]);
 */
export interface TokenEstimator {
  promptTokens(messages: ReadonlyArray<ChatMessage>): number;
}

/** Loads the estimator (about half a second the first time in a process). */
export async function loadTokenEstimator(): Promise<TokenEstimator> {
  const encoder = await loadO200kTokenizer();
  return {
    promptTokens: (messages) => {
      let total = REPLY_PRIMING;
      for (const m of messages) {
        total += PER_MESSAGE + encoder.encode(String(m.content ?? ""), [], []).length;
      }
      return total;
    },
  };
}

/** The output-token ceiling a request's params set (`max_tokens`, `max_completion_tokens`). */
export function outputCeiling(params: Readonly<Record<string, unknown>> | undefined): number {
  const value = params?.max_completion_tokens ?? params?.max_tokens;
  return typeof value === "number" && Number.isFinite(value) && value > 0
    ? value
    : DEFAULT_OUTPUT_CEILING;
}
