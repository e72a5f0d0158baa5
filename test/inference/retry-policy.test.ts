import { describe, expect, it } from "vitest";
import {
  type AttemptFailure,
  type AttemptState,
  DEFAULT_RETRY_POLICY,
  honouredDelayMs,
  MAX_SERVER_DELAY_MS,
  nextAttempt,
  REFUSALS_BEFORE_GIVING_UP,
  type RetryPolicy,
  retryAfterMs,
  type UnreachableState,
  unreachableVerdict,
} from "../../src/inference/retry-policy.js";

const NOW = Date.parse("2026-03-01T12:00:00Z");

describe("honouredDelayMs", () => {
  it("honours a server's delay up to a minute, as the OpenAI SDKs do", () => {
    expect(MAX_SERVER_DELAY_MS).toBe(60_000);
    expect(honouredDelayMs(0)).toBe(0);
    expect(honouredDelayMs(1_500)).toBe(1_500);
    expect(honouredDelayMs(60_000)).toBe(60_000);
  });

  it("never waits longer: a delay of a minute and more, hours or forever gives none", () => {
    for (const ms of [60_001, 3_600_000, 86_400_000, Number.MAX_VALUE, Number.POSITIVE_INFINITY]) {
      expect(honouredDelayMs(ms), String(ms)).toBeNull();
    }
  });

  it("gives none for no delay, a negative one or NaN", () => {
    for (const ms of [null, -1, Number.NaN]) expect(honouredDelayMs(ms), String(ms)).toBeNull();
  });
});

describe("retryAfterMs", () => {
  const headers = (values: Record<string, string>) => new Headers(values);

  it("reads retry-after-ms, then retry-after in seconds, then retry-after as an HTTP date", () => {
    expect(retryAfterMs(headers({ "retry-after-ms": "250", "retry-after": "9" }), NOW)).toBe(250);
    expect(retryAfterMs(headers({ "retry-after": "2" }), NOW)).toBe(2_000);
    expect(retryAfterMs(headers({ "retry-after": "0.5" }), NOW)).toBe(500);
    const inTenSeconds = new Date(NOW + 10_000).toUTCString();
    expect(retryAfterMs(headers({ "retry-after": inTenSeconds }), NOW)).toBe(10_000);
    const past = new Date(NOW - 10_000).toUTCString();
    expect(retryAfterMs(headers({ "retry-after": past }), NOW)).toBe(0);
  });

  it("caps every form at a minute: a day asked for is no delay to honour", () => {
    const day = 86_400;
    expect(retryAfterMs(headers({ "retry-after": String(day) }), NOW)).toBeNull();
    expect(retryAfterMs(headers({ "retry-after-ms": String(day * 1000) }), NOW)).toBeNull();
    const tomorrow = new Date(NOW + day * 1000).toUTCString();
    expect(retryAfterMs(headers({ "retry-after": tomorrow }), NOW)).toBeNull();
    expect(retryAfterMs(headers({ "retry-after": "60" }), NOW)).toBe(60_000);
    expect(retryAfterMs(headers({ "retry-after": "61" }), NOW)).toBeNull();
  });

  it("ignores what it cannot read", () => {
    expect(retryAfterMs(undefined, NOW)).toBeNull();
    expect(retryAfterMs(headers({}), NOW)).toBeNull();
    expect(retryAfterMs(headers({ "retry-after": "soon" }), NOW)).toBeNull();
    expect(retryAfterMs(headers({ "retry-after": "" }), NOW)).toBeNull();
    expect(retryAfterMs(headers({ "retry-after": "-5" }), NOW)).toBeNull();
  });
});

describe("unreachableVerdict", () => {
  const state = (over: Partial<UnreachableState>): UnreachableState => ({
    answered: false,
    refusals: 1,
    lastAttempt: false,
    downMs: 0,
    outageToleranceMs: 120_000,
    outageRetries: 1,
    ...over,
  });
  const noJitter = () => 1;

  it("gives up on an endpoint that never answered after a few refusals in the step", () => {
    for (let refusals = 1; refusals < REFUSALS_BEFORE_GIVING_UP; refusals++) {
      const verdict = unreachableVerdict(state({ refusals }), noJitter);
      expect(verdict).toMatchObject({ kind: "retry", countsAsAttempt: true });
      // a short pause, nothing like the outage tolerance
      expect((verdict as { delayMs: number }).delayMs).toBeLessThanOrEqual(1_000);
    }
    expect(unreachableVerdict(state({ refusals: REFUSALS_BEFORE_GIVING_UP }))).toEqual({
      kind: "refused",
    });
  });

  it("gives up at a call's last attempt, and never waits for the outage tolerance first", () => {
    expect(unreachableVerdict(state({ lastAttempt: true }))).toEqual({ kind: "refused" });
    // an hour of tolerance and no time down yet: still refused, the tolerance is for outages
    expect(
      unreachableVerdict(
        state({ refusals: REFUSALS_BEFORE_GIVING_UP, downMs: 0, outageToleranceMs: 3_600_000 }),
      ),
    ).toEqual({ kind: "refused" });
  });

  it("retries an endpoint that answered and went away until its outage tolerance has passed", () => {
    const during = unreachableVerdict(
      state({ answered: true, refusals: 0, downMs: 119_999, outageRetries: 40 }),
      noJitter,
    );
    expect(during).toMatchObject({ kind: "retry", countsAsAttempt: false });
    expect((during as { delayMs: number }).delayMs).toBeLessThanOrEqual(5_000);
    expect(unreachableVerdict(state({ answered: true, downMs: 120_000 }))).toEqual({
      kind: "down",
    });
    // the outage is waited out however many attempts the call had left
    expect(unreachableVerdict(state({ answered: true, lastAttempt: true })).kind).toBe("retry");
  });
});

describe("nextAttempt", () => {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 3 };
  const at = (attempt: number, over: Partial<AttemptState> = {}): AttemptState => ({
    attempt,
    outageRetries: 0,
    ...over,
  });
  const transient = (over: Partial<Extract<AttemptFailure, { kind: "retry" }>> = {}) =>
    ({ kind: "retry", reason: "503 busy", retryAfterMs: null, throttled: false, ...over }) as const;
  const noJitter = () => 1;

  it("gives up at once on a cancellation, an empty quota and a final failure", () => {
    expect(nextAttempt(policy, at(1), { kind: "aborted", reason: "canceled" })).toEqual({
      kind: "give-up",
      reason: "canceled",
    });
    expect(nextAttempt(policy, at(1), { kind: "quota", reason: "429 quota" })).toEqual({
      kind: "give-up",
      reason: "quota",
    });
    expect(nextAttempt(policy, at(1), { kind: "final", reason: "400 bad" })).toEqual({
      kind: "give-up",
      reason: "final",
    });
  });

  it("retries a transient failure with a full-jitter backoff that doubles up to its cap", () => {
    const delays = [1, 2, 3].map(
      (attempt) =>
        nextAttempt(
          { ...policy, maxAttempts: 10, backoffBaseMs: 100, backoffCapMs: 300 },
          at(attempt),
          transient(),
          noJitter,
        ) as { delayMs: number; countsAsAttempt: boolean },
    );
    expect(delays.map((d) => d.delayMs)).toEqual([100, 200, 300]);
    expect(delays.every((d) => d.countsAsAttempt)).toBe(true);
    const jittered = nextAttempt(policy, at(2), transient(), () => 0.25);
    expect(jittered).toEqual({ kind: "retry", delayMs: 125, countsAsAttempt: true });
  });

  it("waits what the server asked for instead, up to a minute", () => {
    expect(nextAttempt(policy, at(1), transient({ retryAfterMs: 2_000 }), noJitter)).toEqual({
      kind: "retry",
      delayMs: 2_000,
      countsAsAttempt: true,
    });
    const dayLong = nextAttempt(policy, at(1), transient({ retryAfterMs: 86_400_000 }), noJitter);
    expect(dayLong).toEqual({ kind: "retry", delayMs: 250, countsAsAttempt: true });
  });

  it("gives up when the policy's attempts are spent", () => {
    expect(nextAttempt(policy, at(3), transient({ retryAfterMs: 10 }))).toEqual({
      kind: "give-up",
      reason: "attempts",
    });
    expect(nextAttempt({ ...policy, maxAttempts: 1 }, at(1), transient())).toEqual({
      kind: "give-up",
      reason: "attempts",
    });
  });

  it("follows the outage clock for an endpoint it cannot reach", () => {
    const unreachable = transient({ unreachable: true });
    const wentAway = { answered: true, refusals: 0, downMs: 60_000 };
    // an outage is waited out without using attempts, even at the last one
    expect(
      nextAttempt(policy, at(3, { outage: wentAway, outageRetries: 9 }), unreachable, noJitter),
    ).toEqual({ kind: "retry", delayMs: 4_000, countsAsAttempt: false });
    expect(
      nextAttempt(
        { ...policy, outageToleranceMs: 60_000 },
        at(1, { outage: wentAway }),
        unreachable,
      ),
    ).toEqual({ kind: "give-up", reason: "down" });
    // one that never answered is given up on after the policy's refusals
    const neverAnswered = { answered: false, refusals: 2, downMs: 0 };
    expect(nextAttempt(policy, at(1, { outage: neverAnswered }), unreachable).kind).toBe("retry");
    expect(
      nextAttempt(
        { ...policy, refusalsBeforeGivingUp: 2 },
        at(1, { outage: neverAnswered }),
        unreachable,
      ),
    ).toEqual({ kind: "give-up", reason: "refused" });
  });

  it("retries a failure to reach the endpoint as any other when the outage state is not given", () => {
    const unreachable = transient({ unreachable: true });
    expect(nextAttempt(policy, at(1), unreachable, noJitter)).toEqual({
      kind: "retry",
      delayMs: 250,
      countsAsAttempt: true,
    });
    expect(nextAttempt(policy, at(3), unreachable).kind).toBe("give-up");
  });
});
