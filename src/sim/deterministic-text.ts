import { mix32, SeededRandom } from "./seeded-random.js";
import type { SimTokenizer } from "./sim-tokenizer.js";

/**
 * Every simulated completion starts with this, so no one mistakes it for a model's answer.
 *
 * @example
 * text.startsWith(SIMULATED_PREFIX); // true
 */
export const SIMULATED_PREFIX = "[simulated]";

/** Common words; those that are one o200k token with a leading space make up the output. */
const CANDIDATE_WORDS = `the of and to in is that for it as with was on be by this are from at or
an have not which but they their has more one all were been can also other its new when there
data model asset pipeline document token cost ledger graph lineage run value result analysis
summary report table record source output input batch stream cache price call answer review
first second third each many most some such only well very much good great small large long
short high low early late clear simple strong quick careful steady open close main key core
text word line page note part point case fact idea plan step task goal need use work show
find make take give keep move turn hold read write check build test start end begin finish
market customer product service team project system process quality risk growth change
people time year day week month world group company number level area order question issue`
  .split(/\s+/)
  .filter((word) => word.length > 0);

/**
 * What a generated completion needs: whose hash it derives from and how long it may be.
 *
 * @example
 * const request: TextRequest = { seed: 1, promptHash: 99, choiceIndex: 0, minTokens: 16, maxTokens: 256, limit: 64 };
 */
export interface TextRequest {
  readonly seed: number;
  /** A hash of the prompt (its tokens); the same prompt always gives the same text. */
  readonly promptHash: number;
  /** Which of the `n` choices; each choice gets its own text. */
  readonly choiceIndex: number;
  /** Bounds of the natural length, in tokens. */
  readonly minTokens: number;
  readonly maxTokens: number;
  /** The request's `max_tokens` (or what the context window leaves): longer text is cut here. */
  readonly limit: number;
}

/**
 * A generated completion: its text, cut into token-sized pieces for streaming.
 *
 * @example
 * const { text, completionTokens, finishReason } = generated;
 */
export interface GeneratedText {
  readonly text: string;
  /** One piece per token, in order; `pieces.join("") === text`. */
  readonly pieces: ReadonlyArray<string>;
  readonly completionTokens: number;
  readonly finishReason: "stop" | "length";
}

/**
 * Produces deterministic, clearly simulated completion text of an exact token length.
 *
 * The natural length is drawn between `minTokens` and `maxTokens` from a PRNG seeded by the
 * simulator's seed, the prompt hash and the choice index; when it exceeds `limit` the text is
 * cut there and the finish reason is `"length"`. The text is {@link SIMULATED_PREFIX} followed by
 * lowercase words and full stops, each exactly one o200k token, so the tokenizer's count of the
 * text equals `completionTokens` without tokenizing it again.
 *
 * @example
 * const generator = new DeterministicText(await SimTokenizer.load());
 * const out = generator.generate({ seed: 1, promptHash: 7, choiceIndex: 0, minTokens: 16, maxTokens: 64, limit: 32 });
 * out.text.startsWith("[simulated]"); // true
 */
export class DeterministicText {
  readonly #words: ReadonlyArray<string>;
  readonly #prefixPieces: ReadonlyArray<string>;

  constructor(tokenizer: SimTokenizer) {
    this.#words = Object.freeze(
      CANDIDATE_WORDS.filter((word) => tokenizer.countTokens(` ${word}`) === 1).map((w) => ` ${w}`),
    );
    this.#prefixPieces = Object.freeze(
      tokenizer.encode(SIMULATED_PREFIX).map((token) => tokenizer.decode([token])),
    );
    if (this.#words.length < 16) throw new Error("the simulator's word list did not tokenize");
  }

  /** The completion for `request`. */
  generate(request: TextRequest): GeneratedText {
    const random = new SeededRandom(
      mix32(
        request.seed ^ mix32(request.promptHash ^ Math.imul(request.choiceIndex + 1, 0x9e3779b1)),
      ),
    );
    const low = Math.max(0, Math.floor(request.minTokens));
    const high = Math.max(low, Math.floor(request.maxTokens));
    const natural = low + Math.floor(random.next() * (high - low + 1));
    const limit = Math.max(0, Math.floor(request.limit));
    const length = Math.min(natural, limit);

    const pieces: string[] = this.#prefixPieces.slice(0, length);
    let sentenceLeft = 6 + Math.floor(random.next() * 10);
    while (pieces.length < length) {
      if (sentenceLeft === 0) {
        pieces.push(".");
        sentenceLeft = 6 + Math.floor(random.next() * 10);
      } else {
        pieces.push(this.#words[Math.floor(random.next() * this.#words.length)] as string);
        sentenceLeft--;
      }
    }
    return {
      text: pieces.join(""),
      pieces,
      completionTokens: pieces.length,
      finishReason: natural > limit ? "length" : "stop",
    };
  }
}
