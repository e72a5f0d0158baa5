import type { ChatCompletion } from "openai/resources/chat/completions";
import { describe, expect, it } from "vitest";
import { answerText } from "../../src/inference/answer-text.js";

function completion(choices: unknown[]): ChatCompletion {
  return {
    id: "c",
    object: "chat.completion",
    created: 0,
    model: "m",
    choices,
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  } as ChatCompletion;
}

function choice(message: Record<string, unknown>, finish: string | null = "stop") {
  return { index: 0, message: { role: "assistant", ...message }, finish_reason: finish };
}

describe("answerText", () => {
  it("reads the message text, also one with a NUL or that is only whitespace", () => {
    expect(answerText(completion([choice({ content: "hi" })]))).toEqual({ ok: true, text: "hi" });
    expect(answerText(completion([choice({ content: "a\u0000" })]))).toEqual({
      ok: true,
      text: "a\u0000",
    });
    expect(answerText(completion([choice({ content: " " })]))).toEqual({ ok: true, text: " " });
  });

  it.each([
    ["no choices", [], /no choices/],
    ["null content", [choice({ content: null })], /null content/],
    [
      "no content",
      [{ index: 0, message: { role: "assistant" }, finish_reason: "stop" }],
      /no content/,
    ],
    ["empty content", [choice({ content: "" }, null)], /empty content \(finish_reason none\)/],
    ["no message", [{ index: 0, finish_reason: "stop" }], /no content/],
  ])("retries an answer with %s", (_what, choices, reason) => {
    const answer = answerText(completion(choices));
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect(answer.retry).toBe(true);
    expect(answer.reason).toMatch(reason);
  });

  it.each([
    ["filtered", choice({ content: null }, "content_filter"), /content filter/, null],
    [
      "filtered midway",
      choice({ content: "partial" }, "content_filter"),
      /content filter/,
      "partial",
    ],
    ["refused", choice({ content: null, refusal: "I can't" }), /refused: I can't/, null],
    ["cut off", choice({ content: "" }, "length"), /max_tokens ran out/, null],
    [
      "a tool call",
      choice({ content: null, tool_calls: [{ id: "t", type: "function" }] }, "tool_calls"),
      /tool call/,
      null,
    ],
  ])("does not retry an answer %s", (_what, c, reason, partial) => {
    const answer = answerText(completion([c]));
    expect(answer.ok).toBe(false);
    if (answer.ok) return;
    expect(answer.retry).toBe(false);
    expect(answer.reason).toMatch(reason);
    expect(answer.partial).toBe(partial);
  });
});
