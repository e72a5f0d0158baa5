import type { InferSpec } from "../assets/asset-context.js";
import { errorMessage } from "../util/error-message.js";
import { redactSecrets } from "../util/redactor.js";
import { type InferenceFailure, inferenceFailure } from "./inference-failure.js";

/** An answer's value for the document's row, or the `parse` failure that replaced it. */
export type ParsedAnswer<O> =
  | { readonly ok: true; readonly value: O | string }
  | { readonly ok: false; readonly failure: InferenceFailure };

/**
 * The value of an answer: the spec's `parse(text, item)` where it has one, else the text. What
 * `parse` throws is a `parse` failure whose message (the row's error) carries no secret.
 *
 * @example
 * const parsed = parseAnswer(spec, text, item);
 * if (!parsed.ok) fail(parsed.failure);
 */
export function parseAnswer<I, O>(spec: InferSpec<I, O>, text: string, item: I): ParsedAnswer<O> {
  if (spec.parse === undefined) return { ok: true, value: text };
  try {
    return { ok: true, value: spec.parse(text, item) };
  } catch (error) {
    return {
      ok: false,
      failure: inferenceFailure("parse", redactSecrets(`parse failed: ${errorMessage(error)}`)),
    };
  }
}
