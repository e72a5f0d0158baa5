import type { Tiktoken } from "js-tiktoken/lite";

/** The o200k chat-format special tokens (gpt-4o and later), as tiktoken names them. */
export const O200K_SPECIAL_TOKENS: Readonly<Record<string, number>> = Object.freeze({
  "<|im_start|>": 200264,
  "<|im_end|>": 200265,
  "<|im_sep|>": 200266,
});

let loading: Promise<Tiktoken> | undefined;

/**
 * The process-wide o200k_base tokenizer (with the chat-format special tokens), loaded on first
 * use: parsing the rank file takes about half a second, so it is done once per process and only
 * by the commands that count tokens.
 *
 * @example
 * const encoder = await loadO200kTokenizer();
 * encoder.encode("hello world").length; // 2
 */
export function loadO200kTokenizer(): Promise<Tiktoken> {
  loading ??= (async () => {
    const [{ Tiktoken }, { default: ranks }] = await Promise.all([
      import("js-tiktoken/lite"),
      import("js-tiktoken/ranks/o200k_base"),
    ]);
    return new Tiktoken(ranks, { ...O200K_SPECIAL_TOKENS });
  })();
  return loading;
}
