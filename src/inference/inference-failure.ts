import type { AttemptFailure } from "./retry-policy.js";

/**
 * What kind of failure ended a document's call on a model (or an attempt of it):
 *
 * - `budget`: not sent, the run's `--max-cost` would be exceeded.
 * - `canceled`: the run was canceled.
 * - `quota`: the account behind the endpoint is out of quota.
 * - `parse`: the answer came, and the spec's `parse` threw on it.
 * - `http`: the endpoint answered an error status (or nothing in time).
 * - `unreadable`: the endpoint answered something that cannot be used: not a completion, no
 *   usage or an impossible one, no text (a refusal, a content filter, an empty answer).
 * - `unreachable`: the endpoint could not be reached, past its outage tolerance.
 * - `refused`: the endpoint never answered in this run (its server is not running).
 * - `store`: the database could not record what the call needs (its dispatch, its answer).
 * - `request`: the document's request could not be built again when it was sent (`messages()`
 *   threw, or was not deterministic).
 * - `exhausted`: every attempt failed; `last` says how the last one did.
 */
export type InferenceFailureKind =
  | "budget"
  | "canceled"
  | "quota"
  | "parse"
  | "http"
  | "unreadable"
  | "unreachable"
  | "refused"
  | "store"
  | "request";

/**
 * A failure as a typed value: its kind, which the step's decisions read, and the message a
 * user sees on the document's row (and in the step's error).
 *
 * @example
 * const failure = inferenceFailure("parse", "parse failed: Unexpected token");
 * if (endsDocument(failure)) ...; // false: the next model of the chain may try
 */
export type InferenceFailure =
  | { readonly kind: InferenceFailureKind; readonly message: string }
  | {
      readonly kind: "exhausted";
      readonly message: string;
      readonly attempts: number;
      readonly last: InferenceFailure;
    };

/** A failure of `kind` with the user-facing `message`. */
export function inferenceFailure(kind: InferenceFailureKind, message: string): InferenceFailure {
  return Object.freeze({ kind, message });
}

/** Every attempt of a call failed; the message names the count and the last failure. */
export function attemptsExhausted(attempts: number, last: InferenceFailure): InferenceFailure {
  return Object.freeze({
    kind: "exhausted",
    message: `${attempts} attempts failed; last: ${last.message}`,
    attempts,
    last,
  });
}

/** A call not sent because the run's `--max-cost` would be exceeded. */
export const BUDGET_EXCEEDED = inferenceFailure(
  "budget",
  "not sent: the run's --max-cost would be exceeded",
);

/** A call the run's cancellation stopped. */
export const CANCELED = inferenceFailure("canceled", "canceled");

/**
 * Whether nothing more is tried for the document after this failure: the run is out of budget
 * or canceled, or the document's request itself is at fault. Any other failure is this model's:
 * the next model of the fallback chain may try.
 */
export function endsDocument(failure: InferenceFailure): boolean {
  return (
    failure.kind === "budget" ||
    failure.kind === "canceled" ||
    failure.kind === "request" ||
    failure.kind === "store"
  );
}

/** The kind of a classified attempt failure (see `classifyFailure`). */
export function attemptFailureKind(failure: AttemptFailure): InferenceFailureKind {
  switch (failure.kind) {
    case "aborted":
      return "canceled";
    case "quota":
      return "quota";
    case "final":
      return "http";
    case "retry":
      return failure.unreachable === true
        ? "unreachable"
        : failure.malformed === true
          ? "unreadable"
          : "http";
  }
}
