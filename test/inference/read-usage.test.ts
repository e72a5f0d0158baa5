import type { ChatCompletion } from "openai/resources/chat/completions";
import { describe, expect, it } from "vitest";
import { readUsage } from "../../src/inference/read-usage.js";

function completion(usage: unknown): ChatCompletion {
  return {
    id: "c",
    object: "chat.completion",
    created: 0,
    model: "m",
    choices: [],
    usage,
  } as never;
}

describe("readUsage", () => {
  it("reads prompt, cached, completion and reasoning tokens", () => {
    const read = readUsage(
      completion({
        prompt_tokens: 10,
        completion_tokens: 4,
        prompt_tokens_details: { cached_tokens: 6 },
        completion_tokens_details: { reasoning_tokens: 2 },
      }),
    );
    expect(read).toEqual({
      ok: true,
      usage: { prompt: 10, cached: 6, completion: 4, reasoning: 2 },
    });
  });

  it("fails as unreadable what cannot be priced, saying why", () => {
    const cases: Array<[unknown, string]> = [
      [{ choices: "no" }, "the response is not a chat completion"],
      [undefined, "the response has no usage"],
      [{ prompt_tokens: -1, completion_tokens: 0 }, "impossible prompt_tokens (-1)"],
      [{ prompt_tokens: 1, completion_tokens: 1.5 }, "impossible completion_tokens (1.5)"],
      [
        { prompt_tokens: 1, completion_tokens: 0, prompt_tokens_details: { cached_tokens: 2 } },
        "more cached_tokens (2) than prompt_tokens (1)",
      ],
    ];
    for (const [usage, why] of cases) {
      const response =
        (usage as { choices?: unknown })?.choices === "no"
          ? ({ choices: "no" } as never)
          : completion(usage);
      const read = readUsage(response);
      expect(read.ok, why).toBe(false);
      if (!read.ok) {
        expect(read.failure.kind).toBe("unreadable");
        expect(read.failure.message).toContain(why);
      }
    }
  });
});
