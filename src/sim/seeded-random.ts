/**
 * A small, fast, seeded pseudo-random generator (mulberry32) for reproducible simulations.
 *
 * The simulator draws every random decision (faults, jitter) from one of these so that a run
 * with the same seed and the same request order makes the same decisions.
 *
 * @example
 * const random = new SeededRandom(42);
 * const roll = random.next(); // in [0, 1)
 */
export class SeededRandom {
  #state: number;

  constructor(seed: number) {
    this.#state = mix32(seed >>> 0) >>> 0;
  }

  /** The next number in `[0, 1)`. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** True with probability `rate` (a rate of 0 never, 1 always, without drawing twice). */
  chance(rate: number): boolean {
    if (rate <= 0) return false;
    if (rate >= 1) return true;
    return this.next() < rate;
  }
}

/**
 * A 32-bit integer finalizer (murmur3's fmix32): spreads every input bit over the output.
 *
 * @example
 * const h = mix32(hashString("model") ^ 7);
 */
export function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The 32-bit FNV-1a hash of a string's UTF-16 code units, finalized with {@link mix32}.
 *
 * @example
 * hashString("strata-sim"); // a stable unsigned 32-bit number
 */
export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/**
 * A 32-bit hash of a token sequence (FNV-1a over the token ids, finalized with {@link mix32}).
 *
 * @example
 * hashTokens([1, 2, 3]) === hashTokens([1, 2, 3]); // true
 */
export function hashTokens(tokens: ReadonlyArray<number>, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < tokens.length; i++) {
    h ^= tokens[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h ^ tokens.length);
}
