import type { ChatCompletion } from "openai/resources/chat/completions";

/**
 * The text of a completion, or why it has none. Without text an answer is a failed attempt
 * (billed all the same, when its usage says so), never a success and never cached:
 *
 * - retried, within the model's attempts, like a transient failure: no choices at all, or a
 *   message without content (null, missing, empty) that ended normally (`stop`, or no reason).
 *   A server glitch; another attempt may answer.
 * - not retried on this model (the next model of the fallback chain may try): a refusal (the
 *   message's `refusal` field), `finish_reason: content_filter` (also with partial text),
 *   `length` before any text (`max_tokens` spent, often on reasoning: raise it), and a tool
 *   call instead of text. The same request would get the same answer, and pay again.
 */
export type AnswerText =
  | { readonly ok: true; readonly text: string }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly retry: boolean;
      /** Partial text that came with the failure, kept on the ledger row for inspection. */
      readonly partial: string | null;
    };

/**
 * Reads the answer's text from a completion (see {@link AnswerText} for what counts as none).
 *
 * @example
 * const answer = answerText(completion);
 * if (!answer.ok && answer.retry) ...; // try again
 */
export function answerText(completion: ChatCompletion): AnswerText {
  const choices: unknown = completion.choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    return noText("the answer has no choices", true, null);
  }
  const choice = (choices[0] ?? {}) as {
    finish_reason?: unknown;
    message?: { content?: unknown; refusal?: unknown; tool_calls?: unknown } | null;
  };
  const message = choice.message ?? {};
  const finish = typeof choice.finish_reason === "string" ? choice.finish_reason : null;
  const content = typeof message.content === "string" ? message.content : null;
  const partial = content === "" ? null : content;
  if (typeof message.refusal === "string" && message.refusal !== "") {
    return noText(`the model refused: ${message.refusal}`, false, partial);
  }
  if (finish === "content_filter") {
    return noText(
      "the endpoint's content filter withheld the answer (finish_reason content_filter)",
      false,
      partial,
    );
  }
  if (content !== null && content !== "") return { ok: true, text: content };
  const what =
    message.content === undefined
      ? "no content"
      : content === ""
        ? "empty content"
        : "null content";
  if (finish === "length") {
    return noText(
      `the answer has ${what}: max_tokens ran out before any text (finish_reason length); raise max_tokens`,
      false,
      null,
    );
  }
  if (
    finish === "tool_calls" ||
    (Array.isArray(message.tool_calls) && message.tool_calls.length > 0)
  ) {
    return noText(`the answer is a tool call, with ${what}`, false, null);
  }
  return noText(`the answer has ${what} (finish_reason ${finish ?? "none"})`, true, null);
}

function noText(reason: string, retry: boolean, partial: string | null): AnswerText {
  return { ok: false, reason, retry, partial };
}
