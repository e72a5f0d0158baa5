import { describe, expect, it } from "vitest";
import {
  attemptFailureKind,
  attemptsExhausted,
  BUDGET_EXCEEDED,
  CANCELED,
  endsDocument,
  inferenceFailure,
} from "../../src/inference/inference-failure.js";

describe("InferenceFailure", () => {
  it("keeps the messages users see on failed rows", () => {
    expect(BUDGET_EXCEEDED).toEqual({
      kind: "budget",
      message: "not sent: the run's --max-cost would be exceeded",
    });
    expect(CANCELED.message).toBe("canceled");
    const last = inferenceFailure("http", "503 busy");
    expect(attemptsExhausted(5, last)).toMatchObject({
      kind: "exhausted",
      message: "5 attempts failed; last: 503 busy",
      last,
    });
  });

  it("ends the document on budget, cancellation, a bad request and the store; else falls back", () => {
    for (const kind of ["budget", "canceled", "request", "store"] as const) {
      expect(endsDocument(inferenceFailure(kind, "x")), kind).toBe(true);
    }
    for (const kind of [
      "quota",
      "parse",
      "http",
      "unreadable",
      "unreachable",
      "refused",
    ] as const) {
      expect(endsDocument(inferenceFailure(kind, "x")), kind).toBe(false);
    }
    expect(endsDocument(attemptsExhausted(2, inferenceFailure("store", "down")))).toBe(false);
  });

  it("names the kind of a classified attempt failure", () => {
    const retry = { kind: "retry", reason: "r", retryAfterMs: null, throttled: false } as const;
    expect(attemptFailureKind({ kind: "aborted", reason: "canceled" })).toBe("canceled");
    expect(attemptFailureKind({ kind: "quota", reason: "q" })).toBe("quota");
    expect(attemptFailureKind({ kind: "final", reason: "400" })).toBe("http");
    expect(attemptFailureKind(retry)).toBe("http");
    expect(attemptFailureKind({ ...retry, unreachable: true })).toBe("unreachable");
    expect(attemptFailureKind({ ...retry, malformed: true })).toBe("unreadable");
  });
});
