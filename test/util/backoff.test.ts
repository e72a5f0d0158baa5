import { describe, expect, it } from "vitest";
import { fullJitterBackoffMs } from "../../src/util/backoff.js";

describe("fullJitterBackoffMs", () => {
  it("is uniform below a ceiling that doubles per failed attempt, up to the cap", () => {
    expect(fullJitterBackoffMs(1, 250, 20_000, () => 0)).toBe(0);
    expect(fullJitterBackoffMs(1, 250, 20_000, () => 1)).toBe(250);
    expect(fullJitterBackoffMs(2, 250, 20_000, () => 1)).toBe(500);
    expect(fullJitterBackoffMs(4, 250, 20_000, () => 0.5)).toBe(1_000);
    expect(fullJitterBackoffMs(30, 250, 20_000, () => 1)).toBe(20_000);
    // no failure yet waits as after the first
    expect(fullJitterBackoffMs(0, 250, 20_000, () => 1)).toBe(250);
  });

  it("stays in [0, ceiling) with the real random source", () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const ms = fullJitterBackoffMs(attempt, 100, 1_000);
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(Math.min(1_000, 100 * 2 ** (attempt - 1)));
    }
  });
});
