import { Tiktoken } from "js-tiktoken/lite";
import o200k from "js-tiktoken/ranks/o200k_base";
import { beforeAll, describe, expect, it } from "vitest";
import { DeterministicText } from "../../src/sim/deterministic-text.js";
import { SimTokenizer } from "../../src/sim/sim-tokenizer.js";

describe("DeterministicText and SimTokenizer", () => {
  let tokenizer: SimTokenizer;
  let text: DeterministicText;
  let reference: Tiktoken;

  beforeAll(async () => {
    tokenizer = await SimTokenizer.load();
    text = new DeterministicText(tokenizer);
    // the oracle is js-tiktoken itself, not the simulator's wrapper
    reference = new Tiktoken(o200k);
  });

  it("produces text whose o200k token count is exactly the reported completion tokens", () => {
    for (let promptHash = 0; promptHash < 200; promptHash++) {
      const out = text.generate({
        seed: 1,
        promptHash,
        choiceIndex: 0,
        minTokens: 1,
        maxTokens: 300,
        limit: 1000,
      });
      expect(out.text.startsWith("[simulated]") || out.completionTokens < 4).toBe(true);
      expect(reference.encode(out.text).length).toBe(out.completionTokens);
      expect(out.pieces.join("")).toBe(out.text);
    }
  });

  it("is deterministic in seed, prompt and choice", () => {
    const base = {
      seed: 5,
      promptHash: 42,
      choiceIndex: 0,
      minTokens: 16,
      maxTokens: 64,
      limit: 64,
    };
    expect(text.generate(base)).toEqual(text.generate(base));
    expect(text.generate({ ...base, seed: 6 }).text).not.toBe(text.generate(base).text);
    expect(text.generate({ ...base, choiceIndex: 1 }).text).not.toBe(text.generate(base).text);
  });

  it("cuts at the limit with finish reason length", () => {
    const out = text.generate({
      seed: 0,
      promptHash: 1,
      choiceIndex: 0,
      minTokens: 50,
      maxTokens: 50,
      limit: 10,
    });
    expect(out).toMatchObject({ completionTokens: 10, finishReason: "length" });
  });

  it("counts a chat prompt as OpenAI does for gpt-4o: 3 tokens per message, plus the role, plus 3", () => {
    const messages = [
      { role: "system", content: "You are a careful analyst." },
      { role: "user", content: "Summarize: the quarterly report shows growth." },
    ];
    const expected =
      messages.reduce(
        (sum, message) =>
          sum +
          3 +
          reference.encode(message.role).length +
          reference.encode(message.content).length,
        0,
      ) + 3;
    expect(tokenizer.encodeChat(messages).length).toBe(expected);
  });

  it("treats special-token text in a prompt as plain text", () => {
    expect(tokenizer.countTokens("<|endoftext|>")).toBeGreaterThan(1);
  });
});
