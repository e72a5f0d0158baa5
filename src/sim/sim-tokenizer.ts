import type { Tiktoken } from "js-tiktoken/lite";
import { loadO200kTokenizer } from "../util/tiktoken.js";

/** The chat-format special tokens of the o200k family (gpt-4o and later), as tiktoken names them. */
const IM_START = 200264;
const IM_END = 200265;
const IM_SEP = 200266;

/** Strings shorter than this are cheap to encode and are not worth a cache entry. */
const MIN_CACHED_CHARS = 256;
/** Bounds on the encode cache: entries and the tokens they hold together. */
const MAX_CACHED_ENTRIES = 4096;
const MAX_CACHED_TOKENS = 2_000_000;

/**
 * One chat message as the simulator reads it: a role and text content (a string or text parts).
 *
 * @example
 * const message: SimChatMessage = { role: "user", content: "Summarize: ..." };
 */
export interface SimChatMessage {
  readonly role: string;
  readonly content?: unknown;
  readonly name?: unknown;
  readonly tool_calls?: unknown;
}

let loading: Promise<SimTokenizer> | undefined;

/**
 * Counts tokens the way an o200k_base model does, for the simulator's usage numbers.
 *
 * The rank file is parsed once per process (it takes about half a second) by
 * {@link SimTokenizer.load}; encodings of long strings are kept in a bounded LRU cache, so a
 * system prompt shared by thousands of requests is tokenized once. Chat prompts are framed as
 * the o200k chat format does (`<|im_start|>role<|im_sep|>content<|im_end|>`, then
 * `<|im_start|>assistant<|im_sep|>`), which gives the counts OpenAI reports for gpt-4o models.
 *
 * @example
 * const tokenizer = await SimTokenizer.load();
 * tokenizer.countTokens("hello world"); // 2
 */
export class SimTokenizer {
  readonly #encoder: Tiktoken;
  readonly #cache = new Map<string, ReadonlyArray<number>>();
  #cachedTokens = 0;
  readonly #roleTokens = new Map<string, ReadonlyArray<number>>();

  private constructor(encoder: Tiktoken) {
    this.#encoder = encoder;
  }

  /** The process-wide tokenizer, loading the o200k_base ranks on first use. */
  static load(): Promise<SimTokenizer> {
    loading ??= (async () => {
      return new SimTokenizer(await loadO200kTokenizer());
    })();
    return loading;
  }

  /** The tokens of `text` (special-token text is encoded as ordinary text). */
  encode(text: string): ReadonlyArray<number> {
    if (text.length < MIN_CACHED_CHARS) return this.#encoder.encode(text, [], []);
    const hit = this.#cache.get(text);
    if (hit !== undefined) {
      // refresh the entry: Map iteration order is the LRU order
      this.#cache.delete(text);
      this.#cache.set(text, hit);
      return hit;
    }
    const tokens = this.#encoder.encode(text, [], []);
    this.#remember(text, tokens);
    return tokens;
  }

  /** The number of tokens in `text`. */
  countTokens(text: string): number {
    return this.encode(text).length;
  }

  /** The text of `tokens`. */
  decode(tokens: ReadonlyArray<number>): string {
    return this.#encoder.decode([...tokens]);
  }

  /** The prompt tokens of a chat request: every message framed, then the assistant primer. */
  encodeChat(messages: ReadonlyArray<SimChatMessage>): number[] {
    const out: number[] = [];
    for (const message of messages) {
      out.push(IM_START);
      append(out, this.#role(message.role));
      if (typeof message.name === "string" && message.name.length > 0) {
        append(out, this.encode(`:${message.name}`));
      }
      out.push(IM_SEP);
      append(out, this.encode(messageText(message)));
      out.push(IM_END);
    }
    out.push(IM_START);
    append(out, this.#role("assistant"));
    out.push(IM_SEP);
    return out;
  }

  #role(role: string): ReadonlyArray<number> {
    let tokens = this.#roleTokens.get(role);
    if (tokens === undefined) {
      tokens = this.#encoder.encode(role, [], []);
      if (this.#roleTokens.size < 64) this.#roleTokens.set(role, tokens);
    }
    return tokens;
  }

  #remember(text: string, tokens: ReadonlyArray<number>): void {
    if (tokens.length > MAX_CACHED_TOKENS / 4) return;
    this.#cache.set(text, tokens);
    this.#cachedTokens += tokens.length;
    while (this.#cache.size > MAX_CACHED_ENTRIES || this.#cachedTokens > MAX_CACHED_TOKENS) {
      const oldest = this.#cache.entries().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest[0]);
      this.#cachedTokens -= oldest[1].length;
    }
  }
}

/**
 * The text a message contributes to the prompt: its string content or its text parts (other
 * parts, such as images, count nothing), then its tool calls as JSON.
 *
 * @example
 * messageText({ role: "user", content: [{ type: "text", text: "hi" }] }); // "hi"
 */
export function messageText(message: SimChatMessage): string {
  const { content } = message;
  let text = "";
  if (typeof content === "string") {
    text = content;
  } else if (Array.isArray(content)) {
    for (const part of content) {
      if (part !== null && typeof part === "object" && typeof part.text === "string") {
        text += part.text;
      }
    }
  }
  if (message.tool_calls !== undefined) text += JSON.stringify(message.tool_calls);
  return text;
}

function append(out: number[], tokens: ReadonlyArray<number>): void {
  for (let i = 0; i < tokens.length; i++) out.push(tokens[i] as number);
}
