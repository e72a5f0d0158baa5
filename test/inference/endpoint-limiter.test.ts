import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { EndpointLimiter, RateBucket } from "../../src/inference/endpoint-limiter.js";

/** Lets pending promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date", "setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("EndpointLimiter", () => {
  it("admits up to maxConcurrency calls and queues the rest in order", async () => {
    const limiter = new EndpointLimiter(2);
    const order: number[] = [];
    const take = (n: number) => limiter.acquire().then(() => order.push(n));
    await Promise.all([take(1), take(2)]);
    const third = take(3);
    const fourth = take(4);
    await settle();
    expect(order).toEqual([1, 2]);
    expect(limiter.inFlight).toBe(2);
    limiter.release();
    await settle();
    expect(order).toEqual([1, 2, 3]);
    limiter.release();
    await Promise.all([third, fourth]);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it("halves its limit on a throttle at most once per interval and grows back on successes", () => {
    const limiter = new EndpointLimiter(16, { decreaseEveryMs: 1_000 });
    limiter.onThrottle(null);
    expect(limiter.limit).toBe(8);
    limiter.onThrottle(null); // within the interval: no second halving
    expect(limiter.limit).toBe(8);
    vi.advanceTimersByTime(1_000);
    limiter.onThrottle(null);
    expect(limiter.limit).toBe(4);
    for (let i = 0; i < 5; i++) limiter.onSuccess(); // about one per round of successes
    expect(limiter.limit).toBe(5);
    for (let i = 0; i < 1_000; i++) limiter.onSuccess();
    expect(limiter.limit).toBe(16);
  });

  it("never goes below one call in flight", () => {
    const limiter = new EndpointLimiter(2, { decreaseEveryMs: 0 });
    for (let i = 0; i < 10; i++) limiter.onThrottle(null);
    expect(limiter.limit).toBe(1);
  });

  it("starts nothing while paused by retry-after and resumes when the pause ends", async () => {
    const limiter = new EndpointLimiter(4);
    limiter.onThrottle(2_000);
    let granted = false;
    const waiting = limiter.acquire().then(() => {
      granted = true;
    });
    vi.advanceTimersByTime(1_999);
    await settle();
    expect(granted).toBe(false);
    vi.advanceTimersByTime(1);
    await waiting;
    expect(granted).toBe(true);
  });

  it("pauses for reset / limit when the endpoint says no requests remain", async () => {
    const limiter = new EndpointLimiter(4);
    limiter.onSuccess(
      new Headers({
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "10s",
        "x-ratelimit-limit-requests": "10",
      }),
    );
    let granted = false;
    const waiting = limiter.acquire().then(() => {
      granted = true;
    });
    vi.advanceTimersByTime(999);
    await settle();
    expect(granted).toBe(false);
    vi.advanceTimersByTime(1);
    await waiting;
    expect(granted).toBe(true);
  });

  it("rejects a waiter whose signal aborts and keeps serving the others", async () => {
    const limiter = new EndpointLimiter(1);
    await limiter.acquire();
    const controller = new AbortController();
    const aborted = limiter.acquire(controller.signal);
    const other = limiter.acquire();
    controller.abort(new Error("canceled"));
    await expect(aborted).rejects.toThrow("canceled");
    limiter.release();
    await other;
    expect(limiter.inFlight).toBe(1);
  });

  it("rejects at once when the signal has already aborted", async () => {
    const limiter = new EndpointLimiter(1);
    await expect(limiter.acquire(AbortSignal.abort(new Error("gone")))).rejects.toThrow("gone");
    expect(limiter.inFlight).toBe(0);
  });
});

describe("RateBucket", () => {
  it("lets rpm requests through per minute and holds the next until the window frees", async () => {
    const bucket = new RateBucket({ rpm: 2 });
    await bucket.take(1);
    await bucket.take(1);
    let third = false;
    const waiting = bucket.take(1).then(() => {
      third = true;
    });
    await settle();
    vi.advanceTimersByTime(59_000);
    await settle();
    expect(third).toBe(false);
    vi.advanceTimersByTime(1_000);
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    await waiting;
    expect(third).toBe(true);
  });

  it("holds a request whose tokens would pass tpm, but lets one oversized request go alone", async () => {
    const bucket = new RateBucket({ tpm: 100 });
    await bucket.take(500); // larger than the budget, the window is empty: it goes
    let next = false;
    const waiting = bucket.take(10).then(() => {
      next = true;
    });
    await settle();
    expect(next).toBe(false);
    await vi.advanceTimersByTimeAsync(60_010);
    await waiting;
    expect(next).toBe(true);
  });

  it("is not limited without rpm or tpm", async () => {
    const bucket = new RateBucket({});
    expect(bucket.limited).toBe(false);
    await bucket.take(1_000_000);
  });
});
