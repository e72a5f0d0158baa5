import { describe, expect, it } from "vitest";
import { buildRequest, requestParams } from "../../src/inference/inference-request.js";
import { requestHash } from "../../src/inference/request-hash.js";

describe("buildRequest", () => {
  const messages = [{ role: "user" as const, content: "hi" }];

  it("builds the body strata sends: the params, the provider model, the messages, no stream", () => {
    const { body } = buildRequest("qwen3-8b", messages, { max_tokens: 16, temperature: 0 });
    expect(body).toEqual({
      max_tokens: 16,
      temperature: 0,
      model: "qwen3-8b",
      messages,
      stream: false,
    });
  });

  it("names the request by the hash of the model, the messages and the params", () => {
    const params = { temperature: 0, max_tokens: 16 };
    const { hash } = buildRequest("qwen3-8b", messages, params);
    expect(hash).toBe(requestHash("qwen3-8b", messages, params));
    // the same request however its params were written
    expect(buildRequest("qwen3-8b", messages, { max_tokens: 16, temperature: 0 }).hash).toBe(hash);
    expect(buildRequest("other", messages, params).hash).not.toBe(hash);
  });

  it("throws for messages that cannot be sent as JSON", () => {
    expect(() => buildRequest("m", [{ role: "user", content: 1n as never }], {})).toThrow();
  });
});

describe("requestParams", () => {
  it("drops the fields strata sets itself", () => {
    expect(requestParams({ max_tokens: 16, stream: true, model: "x", messages: [] })).toEqual({
      max_tokens: 16,
    });
    expect(requestParams(undefined)).toEqual({});
  });
});
