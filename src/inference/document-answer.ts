import type { InferResultRow } from "../assets/asset-context.js";
import { type Femtos, fromFemtos } from "../util/decimal.js";
import { redactSecrets } from "../util/redactor.js";
import type { InferenceFailure } from "./inference-failure.js";
import { type Usage, ZERO_USAGE } from "./read-usage.js";
import type { StepDocument } from "./step-documents.js";

/** A document's row, the failure that ended it (null when answered), and what it cost. */
export interface DocumentAnswer<O> {
  readonly row: InferResultRow<O>;
  readonly failure: InferenceFailure | null;
  readonly cost: Femtos;
}

/** Tokens and cost a document has spent so far, over its models and attempts. */
export interface Spent {
  readonly usage: Usage;
  readonly cost: Femtos;
}

/** What a document answered from the cache, or not yet sent, has spent. */
export const NOTHING_SPENT: Spent = { usage: ZERO_USAGE, cost: 0n };

/** A document's row: its value or its failure, with what it spent. */
export function documentAnswer<I, O>(
  doc: StepDocument<I>,
  model: string | null,
  result: { readonly output: O | null; readonly failure: InferenceFailure | null },
  spent: Spent,
): DocumentAnswer<O> {
  const { failure } = result;
  return {
    row: {
      id: doc.id,
      output: result.output,
      model,
      status: failure === null ? "succeeded" : "failed",
      // what the user's rows (and Arrow files) hold: no secret an endpoint echoed
      error: failure === null ? null : redactSecrets(failure.message),
      prompt_tokens: spent.usage.prompt,
      cached_tokens: spent.usage.cached,
      completion_tokens: spent.usage.completion,
      cost_usd: fromFemtos(spent.cost),
    },
    failure,
    cost: spent.cost,
  };
}
