import OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OpenAIErrorBody } from "../../src/sim/sim-http-error.js";
import type { SimLedgerSnapshot } from "../../src/sim/sim-ledger.js";
import type { Simulator } from "../../src/sim/simulator.js";
import { startSimulator } from "../../src/sim/simulator.js";

const user = (content: string): ChatCompletionMessageParam[] => [{ role: "user", content }];

/** About `words` tokens of varied text (each word is one o200k token or two). */
function longText(words: number, salt: string): string {
  const vocabulary = ["river", "stone", "ledger", "market", "signal", "harbor", "copper", "meadow"];
  const out: string[] = [salt];
  for (let i = 0; i < words; i++)
    out.push(vocabulary[(i * 7 + (i >> 3)) % vocabulary.length] as string);
  return out.join(" ");
}

describe("startSimulator", () => {
  let sim: Simulator;
  let client: OpenAI;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, latencyMs: 0, seed: 7 });
    client = new OpenAI({ baseURL: sim.url, apiKey: "sim", maxRetries: 0 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it("listens on 127.0.0.1 and gives the OpenAI base URL", () => {
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(sim.port).toBeGreaterThan(0);
  });

  it("answers a chat completion that says it is simulated, with usage", async () => {
    const completion = await client.chat.completions.create({
      model: "qwen3-8b",
      messages: user("Analyze: the quarterly report"),
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.model).toBe("qwen3-8b");
    expect(completion.system_fingerprint).toBe("strata-sim");
    const choice = completion.choices[0];
    expect(choice?.message.role).toBe("assistant");
    expect(choice?.message.content?.startsWith("[simulated]")).toBe(true);
    expect(choice?.finish_reason).toBe("stop");
    const usage = completion.usage;
    expect(usage?.completion_tokens).toBeGreaterThanOrEqual(16);
    expect(usage?.completion_tokens).toBeLessThanOrEqual(256);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
    expect(usage?.prompt_tokens_details?.cached_tokens).toBe(0);
  });

  it("gives the same text for the same seed and prompt, and another text for another seed", async () => {
    const messages = user("Summarize the document about harbors");
    const first = await client.chat.completions.create({ model: "m", messages });
    const again = await client.chat.completions.create({ model: "m", messages });
    expect(again.choices[0]?.message.content).toBe(first.choices[0]?.message.content);
    expect(again.usage).toEqual(first.usage);

    const sameSeed = await startSimulator({ port: 0, seed: 7 });
    const otherSeed = await startSimulator({ port: 0, seed: 8 });
    try {
      const ask = (url: string) =>
        new OpenAI({ baseURL: url, apiKey: "sim", maxRetries: 0 }).chat.completions.create({
          model: "m",
          messages,
        });
      expect((await ask(sameSeed.url)).choices[0]?.message.content).toBe(
        first.choices[0]?.message.content,
      );
      expect((await ask(otherSeed.url)).choices[0]?.message.content).not.toBe(
        first.choices[0]?.message.content,
      );
    } finally {
      await Promise.all([sameSeed.close(), otherSeed.close()]);
    }
  });

  it("streams the same text with the usage in a last chunk without choices", async () => {
    const messages = user("Stream an analysis of the copper market");
    const plain = await client.chat.completions.create({ model: "m", messages });
    const stream = await client.chat.completions.create({
      model: "m",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finishReason: string | null = null;
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta.content ?? "";
      finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    }
    const last = chunks.at(-1);
    expect(text).toBe(plain.choices[0]?.message.content);
    expect(finishReason).toBe("stop");
    expect(last?.choices).toEqual([]);
    expect(last?.usage).toEqual(plain.usage);
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
  });

  it("streams without a usage chunk when include_usage is not asked for", async () => {
    const stream = await client.chat.completions.create({
      model: "m",
      messages: user("hi"),
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.usage === undefined && chunk.choices.length === 1)).toBe(
      true,
    );
  });

  it("cuts the text at max_tokens with finish_reason length", async () => {
    const capped = await client.chat.completions.create({
      model: "m",
      messages: user("long"),
      max_tokens: 5,
    });
    expect(capped.choices[0]?.finish_reason).toBe("length");
    expect(capped.usage?.completion_tokens).toBe(5);
    const newer = await client.chat.completions.create({
      model: "m",
      messages: user("long"),
      max_completion_tokens: 3,
    });
    expect(newer.usage?.completion_tokens).toBe(3);
    expect(newer.choices[0]?.message.content).toBe("[simulated");
  });

  it("answers n choices, each with its own text, and bills their tokens together", async () => {
    const completion = await client.chat.completions.create({
      model: "m",
      messages: user("three ways"),
      n: 3,
    });
    expect(completion.choices.map((choice) => choice.index)).toEqual([0, 1, 2]);
    expect(new Set(completion.choices.map((choice) => choice.message.content)).size).toBe(3);
  });

  it("lists models owned by strata-sim, including those asked for", async () => {
    await client.chat.completions.create({ model: "listed-model", messages: user("hi") });
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    expect(models.map((model) => model.id)).toEqual(
      expect.arrayContaining(["strata-sim-small", "listed-model"]),
    );
    expect(models.every((model) => model.owned_by === "strata-sim")).toBe(true);
    expect((await client.models.retrieve("anything")).owned_by).toBe("strata-sim");
  });

  it("reports cached tokens for a shared prefix of 1,024 tokens or more, in steps of 128", async () => {
    const system = longText(1500, "cache-test");
    const probe = await client.chat.completions.create({
      model: "probe-model",
      messages: [{ role: "system", content: system }],
    });
    // the shared prefix is the system message and the next message's header: as many tokens as
    // the system-only prompt (whose assistant primer has the same length as that header)
    const shared = probe.usage?.prompt_tokens ?? 0;
    expect(shared).toBeGreaterThan(1024);

    const ask = (question: string) =>
      client.chat.completions.create({
        model: "cache-model",
        messages: [
          { role: "system", content: system },
          { role: "user", content: question },
        ],
      });
    const first = await ask("alpha: what is the main point?");
    const second = await ask("bravo: list the risks.");
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(Math.floor(shared / 128) * 128);
  });

  it("reports no cached tokens when the shared prefix is under 1,024 tokens", async () => {
    const system = longText(600, "short-prefix");
    const ask = (question: string) =>
      client.chat.completions.create({
        model: "cache-model",
        messages: [
          { role: "system", content: system },
          { role: "user", content: question },
        ],
      });
    await ask("alpha: first");
    const second = await ask("bravo: second");
    expect(second.usage?.prompt_tokens).toBeGreaterThan(600);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
  });

  it("bills exactly the usage its clients saw, per model, and resets", async () => {
    await fetch(`${sim.origin}/ledger/reset`, { method: "POST" });
    const seen = new Map<
      string,
      { calls: number; promptTokens: number; cachedTokens: number; completionTokens: number }
    >();
    const add = (model: string, usage: OpenAI.CompletionUsage | null | undefined) => {
      const bill = seen.get(model) ?? {
        calls: 0,
        promptTokens: 0,
        cachedTokens: 0,
        completionTokens: 0,
      };
      bill.calls++;
      bill.promptTokens += usage?.prompt_tokens ?? Number.NaN;
      bill.cachedTokens += usage?.prompt_tokens_details?.cached_tokens ?? Number.NaN;
      bill.completionTokens += usage?.completion_tokens ?? Number.NaN;
      seen.set(model, bill);
    };
    const prefix = longText(1300, "ledger");
    await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const model = i % 2 === 0 ? "small" : "large";
        const content = i % 3 === 0 ? `${prefix} question ${i}` : `document ${i}`;
        if (i % 4 === 0) {
          const stream = await client.chat.completions.create({
            model,
            messages: user(content),
            stream: true,
            stream_options: { include_usage: true },
          });
          for await (const chunk of stream) if (chunk.usage) add(model, chunk.usage);
        } else {
          add(
            model,
            (await client.chat.completions.create({ model, messages: user(content) })).usage,
          );
        }
      }),
    );
    const response = await fetch(`${sim.origin}/ledger`);
    const ledger = (await response.json()) as SimLedgerSnapshot;
    expect(ledger).toEqual(sim.ledger());
    expect(ledger.models).toEqual(Object.fromEntries(seen));
    expect(ledger.totals.calls).toBe(12);
    expect(ledger.totals.cachedTokens).toBeGreaterThan(0);
    expect(ledger.requests).toMatchObject({ total: 12, billed: 12, errors: 0 });

    const reset = (await (
      await fetch(`${sim.origin}/ledger/reset`, { method: "POST" })
    ).json()) as SimLedgerSnapshot;
    expect(reset.totals).toEqual({
      calls: 0,
      promptTokens: 0,
      cachedTokens: 0,
      completionTokens: 0,
    });
    expect(sim.ledger().requests.total).toBe(0);
  });

  it("rejects bad JSON and a missing messages field with 400", async () => {
    const post = (body: string) =>
      fetch(`${sim.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
    const badJson = await post("{not json");
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as OpenAIErrorBody).error.type).toBe("invalid_request_error");

    const missing = await post(JSON.stringify({ model: "m" }));
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as OpenAIErrorBody).error).toMatchObject({
      param: "messages",
      code: "missing_required_parameter",
    });

    await expect(
      client.chat.completions.create({ model: "m", messages: [] }),
    ).rejects.toMatchObject({ status: 400, code: "empty_array" });
  });

  it("answers unknown paths with 404 and wrong methods with 405", async () => {
    expect((await fetch(`${sim.origin}/v1/embeddings`, { method: "POST" })).status).toBe(404);
    expect((await fetch(`${sim.url}/chat/completions`)).status).toBe(405);
    expect(await (await fetch(`${sim.origin}/health`)).json()).toEqual({
      status: "ok",
      simulated: true,
    });
  });
});
