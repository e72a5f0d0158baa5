import OpenAI from "openai";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Simulator } from "../../src/sim/simulator.js";
import { startSimulator } from "../../src/sim/simulator.js";
import type { SimulatorOptions } from "../../src/sim/simulator-options.js";

const messages = [{ role: "user" as const, content: "Analyze: a document" }];

/** Waits, a turn of the event loop at a time (no timer: they may be faked), until `done` holds. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setImmediate(resolve));
}

describe("startSimulator faults and controls", () => {
  const running: Simulator[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((sim) => sim.close()));
  });

  async function start(
    options: SimulatorOptions,
    clientOptions: { timeout?: number; apiKey?: string } = {},
  ) {
    const sim = await startSimulator({ port: 0, ...options });
    running.push(sim);
    const client = new OpenAI({
      baseURL: sim.url,
      apiKey: clientOptions.apiKey ?? "sim",
      maxRetries: 0,
      ...clientOptions,
    });
    return { sim, client };
  }

  it("answers 500 server_error at error rate 1, and bills nothing", async () => {
    const { sim, client } = await start({ errorRate: 1 });
    const failure = client.chat.completions.create({ model: "m", messages });
    await expect(failure).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(failure).rejects.toMatchObject({ status: 500, type: "server_error" });
    expect(sim.ledger().requests).toMatchObject({ total: 1, errors: 1, billed: 0 });
    expect(sim.ledger().totals.calls).toBe(0);
  });

  it("limits requests per minute with 429, retry-after and x-ratelimit headers", async () => {
    const { sim, client } = await start({ rateLimitRpm: 2 });
    const first = await client.chat.completions.create({ model: "m", messages }).withResponse();
    expect(first.response.headers.get("x-ratelimit-limit-requests")).toBe("2");
    expect(first.response.headers.get("x-ratelimit-remaining-requests")).toBe("1");
    expect(first.response.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(\.\d+)?(ms|s)$/);
    const second = await client.chat.completions.create({ model: "m", messages }).withResponse();
    expect(second.response.headers.get("x-ratelimit-remaining-requests")).toBe("0");

    const limited = await client.chat.completions
      .create({ model: "m", messages })
      .catch((error: unknown) => error);
    expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
    const error = limited as InstanceType<typeof OpenAI.RateLimitError>;
    expect(error.code).toBe("rate_limit_exceeded");
    const retryAfter = Number(error.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(Number(error.headers.get("retry-after-ms"))).toBeGreaterThan(0);
    expect(error.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(sim.ledger().requests).toMatchObject({ total: 3, billed: 2, rateLimited: 1 });
  });

  it("answers 429 insufficient_quota, which the client reads as a RateLimitError with that code", async () => {
    const { sim, client } = await start({ quotaExhausted: true });
    const failure = await client.chat.completions
      .create({ model: "m", messages })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OpenAI.RateLimitError);
    expect(failure).toMatchObject({
      status: 429,
      code: "insufficient_quota",
      type: "insufficient_quota",
    });
    expect(sim.ledger().requests).toMatchObject({ quotaExhausted: 1, billed: 0 });
  });

  it("never answers at timeout rate 1, so the client times out", async () => {
    const { sim, client } = await start({ timeoutRate: 1 }, { timeout: 200 });
    // the client's own timeout is what ends the call: the simulator never answered it
    await expect(client.chat.completions.create({ model: "m", messages })).rejects.toBeInstanceOf(
      OpenAI.APIConnectionTimeoutError,
    );
    expect(sim.ledger().requests).toMatchObject({ total: 1, timedOut: 1, billed: 0 });
  });

  it("closes quickly while requests hang, failing them on the client", async () => {
    // The client would wait an hour: only the close can end the call within the test.
    const { sim, client } = await start({ timeoutRate: 1 }, { timeout: 3_600_000 });
    const hanging = client.chat.completions
      .create({ model: "m", messages })
      .catch((error: unknown) => error);
    await until(() => sim.ledger().requests.timedOut === 1);
    await sim.close();
    const failure = await hanging;
    expect(failure).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(failure).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
  });

  it("sends a 200 body that is not JSON at malformed rate 1, and does not bill it", async () => {
    const { sim, client } = await start({ malformedRate: 1 });
    await expect(client.chat.completions.create({ model: "m", messages })).rejects.toThrow(
      SyntaxError,
    );
    const stream = await client.chat.completions.create({ model: "m", messages, stream: true });
    await expect(async () => {
      for await (const _chunk of stream) {
        // reading the stream is what fails
      }
    }).rejects.toThrow();
    expect(sim.ledger().requests).toMatchObject({ total: 2, malformed: 2, billed: 0 });
  });

  it("answers 400 context_length_exceeded for a prompt over the context window", async () => {
    const { sim, client } = await start({ contextWindow: 64 });
    const longPrompt = [{ role: "user" as const, content: "word ".repeat(200) }];
    const failure = client.chat.completions.create({ model: "m", messages: longPrompt });
    await expect(failure).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(failure).rejects.toMatchObject({
      code: "context_length_exceeded",
      param: "messages",
    });
    const fits = await client.chat.completions.create({ model: "m", messages });
    expect(
      (fits.usage?.prompt_tokens ?? 0) + (fits.usage?.completion_tokens ?? 0),
    ).toBeLessThanOrEqual(64);
    expect(sim.ledger().requests.badRequests).toBe(1);
  });

  it("requires the configured API key", async () => {
    const { sim } = await start({ apiKey: "secret" });
    const ask = (apiKey: string) =>
      new OpenAI({ baseURL: sim.url, apiKey, maxRetries: 0 }).chat.completions.create({
        model: "m",
        messages,
      });
    await expect(ask("wrong")).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await expect(ask("secret")).resolves.toMatchObject({ object: "chat.completion" });
    expect(sim.ledger().requests).toMatchObject({ unauthorized: 1, billed: 1 });
  });

  it("serves only the configured models when given", async () => {
    const { client } = await start({ models: ["sim-a", "sim-b"] });
    const listed = [];
    for await (const model of client.models.list()) listed.push(model.id);
    expect(listed).toEqual(["sim-a", "sim-b"]);
    await expect(
      client.chat.completions.create({ model: "other", messages }),
    ).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(
      client.chat.completions.create({ model: "sim-a", messages }),
    ).resolves.toBeTruthy();
  });

  it("takes about the configured latency: a fixed part plus a part per output token", async () => {
    const { sim, client } = await start({
      latencyMs: 150,
      minOutputTokens: 20,
      maxOutputTokens: 20,
    });
    // The simulator's clock is faked, so the latency is checked on it, not on a loaded machine's
    // wall clock: it bills a completion when it sends it.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date", "performance"] });
    try {
      const answer = client.chat.completions.create({ model: "m", messages });
      await until(() => sim.ledger().requests.total === 1);
      await vi.advanceTimersByTimeAsync(149);
      expect(sim.ledger().requests.billed, "answered before its latency").toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(sim.ledger().requests.billed, "not answered after its latency").toBe(1);
      await answer;

      // 20 output tokens at 10 ms each: the stream ends after 200 ms, in more than 20 chunks
      sim.setOptions({ latencyMs: 0, perTokenLatencyMs: 10 });
      const streaming = client.chat.completions.create({ model: "m", messages, stream: true });
      await until(() => sim.ledger().requests.total === 2);
      await vi.advanceTimersByTimeAsync(199);
      expect(sim.ledger().requests.billed, "streamed faster than its latency").toBe(1);
      await vi.advanceTimersByTimeAsync(20);
      expect(sim.ledger().requests.billed, "still streaming after its latency").toBe(2);
      let chunks = 0;
      for await (const _chunk of await streaming) chunks++;
      expect(chunks).toBeGreaterThan(20);
    } finally {
      vi.useRealTimers();
    }
  });

  it("changes fault rates live with setOptions", async () => {
    const { sim, client } = await start({ errorRate: 1 });
    await expect(client.chat.completions.create({ model: "m", messages })).rejects.toMatchObject({
      status: 500,
    });
    sim.setOptions({ errorRate: 0 });
    await expect(client.chat.completions.create({ model: "m", messages })).resolves.toBeTruthy();
    expect(() => sim.setOptions({ errorRate: 2 })).toThrow(/errorRate/);
  });

  it("holds requests while paused and answers them on resume", async () => {
    const { sim, client } = await start({});
    sim.pause();
    let answered = false;
    const pending = client.chat.completions.create({ model: "m", messages }).then((completion) => {
      answered = true;
      return completion;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(answered).toBe(false);
    sim.resume();
    expect((await pending).choices[0]?.message.content).toMatch(/^\[simulated\]/);
  });

  it("draws faults from the seed, so the same seed fails the same requests", async () => {
    const outcomes = async (seed: number) => {
      const { client } = await start({ seed, errorRate: 0.5 });
      const results: boolean[] = [];
      for (let i = 0; i < 20; i++) {
        results.push(
          await client.chat.completions.create({ model: "m", messages }).then(
            () => true,
            () => false,
          ),
        );
      }
      return results;
    };
    const first = await outcomes(3);
    expect(await outcomes(3)).toEqual(first);
    expect(first).toContain(true);
    expect(first).toContain(false);
  });
});
