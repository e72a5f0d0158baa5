import { hashString, mix32 } from "./seeded-random.js";

/**
 * How the simulated prefix cache behaves.
 *
 * @example
 * const options: PrefixCacheOptions = { blockSize: 128, minTokens: 1024, maxBlocks: 100_000 };
 */
export interface PrefixCacheOptions {
  /** Cached counts are multiples of this many tokens (OpenAI: 128; vLLM's KV blocks: 16). */
  readonly blockSize: number;
  /** A shared prefix shorter than this is not reported as cached (OpenAI: 1,024). */
  readonly minTokens: number;
  /** How many block hashes the index keeps; the least recently used are forgotten first. */
  readonly maxBlocks: number;
}

/**
 * OpenAI's published prompt-caching behaviour: 1,024 tokens at least, in steps of 128.
 *
 * @example
 * new PrefixCache({ ...DEFAULT_PREFIX_CACHE_OPTIONS, blockSize: 16 }); // vLLM-like blocks
 */
export const DEFAULT_PREFIX_CACHE_OPTIONS: PrefixCacheOptions = Object.freeze({
  blockSize: 128,
  minTokens: 1024,
  maxBlocks: 100_000,
});

/**
 * A bounded index of earlier prompts' token prefixes, answering how much of a new prompt a
 * prefix-caching server would find already computed.
 *
 * Prompts are cut into blocks of `blockSize` tokens; each block is keyed by a 53-bit hash chained
 * over every token before it (and the model name), as vLLM's automatic prefix caching keys its KV
 * blocks. The index is an LRU set of those keys, so memory stays bounded by `maxBlocks`. Roots are
 * refreshed last so they are evicted after their descendants, and a prompt's last token is never
 * counted as cached (a server must compute at least one token).
 *
 * @example
 * const cache = new PrefixCache();
 * cache.match("m", tokens); // 0: nothing seen yet
 * cache.match("m", tokens); // the shared prefix, rounded down to 128 tokens, when >= 1024
 */
export class PrefixCache {
  readonly #options: PrefixCacheOptions;
  readonly #blocks = new Set<number>();

  constructor(options: Partial<PrefixCacheOptions> = {}) {
    this.#options = Object.freeze({ ...DEFAULT_PREFIX_CACHE_OPTIONS, ...options });
    if (!Number.isInteger(this.#options.blockSize) || this.#options.blockSize < 1) {
      throw new RangeError(`prefix cache block size must be a positive integer`);
    }
  }

  /** The number of block hashes held. */
  get size(): number {
    return this.#blocks.size;
  }

  /**
   * The cached-token count for `tokens` sent to `model`, then remembers the prompt's blocks so
   * later prompts sharing its prefix find them.
   */
  match(model: string, tokens: ReadonlyArray<number>): number {
    const { blockSize, minTokens, maxBlocks } = this.#options;
    const blockCount = Math.floor((tokens.length - 1) / blockSize);
    if (blockCount <= 0 || blockCount * blockSize < minTokens || maxBlocks <= 0) return 0;

    const keys = blockKeys(model, tokens, blockCount, blockSize);
    let matched = 0;
    while (matched < keys.length && this.#blocks.has(keys[matched] as number)) matched++;

    // deepest blocks first, so a root outlives its descendants in the LRU order
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as number;
      this.#blocks.delete(key);
      this.#blocks.add(key);
    }
    while (this.#blocks.size > maxBlocks) {
      const oldest = this.#blocks.values().next().value;
      if (oldest === undefined) break;
      this.#blocks.delete(oldest);
    }

    const cached = matched * blockSize;
    return cached >= minTokens ? cached : 0;
  }

  /** Forgets every prefix. */
  clear(): void {
    this.#blocks.clear();
  }
}

/** One chained hash per full block: block i's key covers tokens [0, (i + 1) * blockSize). */
function blockKeys(
  model: string,
  tokens: ReadonlyArray<number>,
  blockCount: number,
  blockSize: number,
): number[] {
  const keys = new Array<number>(blockCount);
  let a = hashString(model);
  let b = hashString(model, 0x9e3779b9);
  let index = 0;
  for (let block = 0; block < blockCount; block++) {
    const end = index + blockSize;
    for (; index < end; index++) {
      const token = tokens[index] as number;
      a = Math.imul(a ^ token, 0x01000193);
      b = Math.imul((b ^ token) + 0x7f4a7c15, 0x5bd1e995);
      b ^= b >>> 15;
    }
    // two independent 32-bit lanes make a 53-bit key: collisions are negligible at this size
    keys[block] = mix32(a) * 0x200000 + (mix32(b ^ block) & 0x1fffff);
  }
  return keys;
}
