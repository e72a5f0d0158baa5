import { describe, expect, it } from "vitest";
import { formatResetDuration, RequestRateLimiter } from "../../src/sim/rate-limiter.js";

describe("RequestRateLimiter", () => {
  it("lets a burst of rpm requests through, then one more per 60/rpm seconds", () => {
    const limiter = new RequestRateLimiter(60, 0);
    for (let i = 0; i < 60; i++) expect(limiter.take(0).allowed).toBe(true);
    const denied = limiter.take(0);
    expect(denied).toMatchObject({ allowed: false, limit: 60, remaining: 0, retryAfterMs: 1000 });
    expect(denied.resetMs).toBe(60_000);
    expect(limiter.take(500).allowed).toBe(false);
    expect(limiter.take(1000).allowed).toBe(true);
  });
});

describe("formatResetDuration", () => {
  it("writes durations as OpenAI's headers do", () => {
    expect(formatResetDuration(17)).toBe("17ms");
    expect(formatResetDuration(1000)).toBe("1s");
    expect(formatResetDuration(2500)).toBe("2.5s");
    expect(formatResetDuration(360_000)).toBe("6m0s");
    expect(formatResetDuration(3_723_000)).toBe("1h2m3s");
  });
});
