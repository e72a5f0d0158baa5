import { describe, expect, it } from "vitest";
import { PrefixCache } from "../../src/sim/prefix-cache.js";

const range = (from: number, length: number) => Array.from({ length }, (_, i) => from + i);

describe("PrefixCache", () => {
  it("reports nothing for a first prompt and the shared prefix, rounded down to a block, for a second", () => {
    const cache = new PrefixCache({ blockSize: 128, minTokens: 1024 });
    const shared = range(0, 1500);
    expect(cache.match("m", [...shared, ...range(50_000, 100)])).toBe(0);
    expect(cache.match("m", [...shared, ...range(60_000, 100)])).toBe(1408);
  });

  it("reports nothing when the shared prefix is under the minimum", () => {
    const cache = new PrefixCache({ blockSize: 16, minTokens: 1024 });
    const shared = range(0, 1000);
    cache.match("m", [...shared, ...range(50_000, 500)]);
    expect(cache.match("m", [...shared, ...range(60_000, 500)])).toBe(0);
  });

  it("never counts a prompt's last token as cached", () => {
    const cache = new PrefixCache({ blockSize: 16, minTokens: 32 });
    const prompt = range(0, 64);
    cache.match("m", prompt);
    expect(cache.match("m", prompt)).toBe(48);
  });

  it("keeps each model's prefixes apart", () => {
    const cache = new PrefixCache({ blockSize: 16, minTokens: 32 });
    const prompt = range(0, 200);
    cache.match("a", prompt);
    expect(cache.match("b", prompt)).toBe(0);
    expect(cache.match("a", prompt)).toBe(192);
  });

  it("stays within its block bound, forgetting the least recently used prompts", () => {
    const cache = new PrefixCache({ blockSize: 16, minTokens: 16, maxBlocks: 100 });
    const old = range(0, 401);
    cache.match("m", old);
    for (let i = 1; i <= 10; i++) cache.match("m", range(i * 100_000, 401));
    expect(cache.size).toBeLessThanOrEqual(100);
    expect(cache.match("m", old)).toBe(0);
    expect(cache.match("m", range(10 * 100_000, 401))).toBe(400);
  });
});
