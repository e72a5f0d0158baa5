import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import OpenAI, { APIConnectionError, APIConnectionTimeoutError } from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { httpTransport } from "../../src/inference/http-transport.js";
import { classifyFailure } from "../../src/inference/retry-policy.js";

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const servers: Server[] = [];

/** A real HTTP server on 127.0.0.1 answering with `handler`; closed after each test. */
async function serve(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => handler(req, body, res));
  });
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const completion = {
  id: "c1",
  object: "chat.completion",
  created: 0,
  model: "m",
  choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }],
  usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
};

describe("httpTransport", () => {
  it("sends the method, headers and body, and answers with a Response of the reply", async () => {
    let seen: { method?: string; type?: string; auth?: string; body?: string } = {};
    const url = await serve((req, body, res) => {
      seen = {
        method: req.method,
        type: req.headers["content-type"],
        auth: req.headers.authorization,
        body,
      };
      res.writeHead(201, { "content-type": "application/json", "x-ratelimit-remaining": "7" });
      res.end('{"ok":true}');
    });
    const response = await httpTransport()(`${url}/v1/x`, {
      method: "POST",
      headers: new Headers({ "content-type": "application/json", authorization: "Bearer k" }),
      body: '{"a":"é"}',
    });
    expect(seen).toEqual({
      method: "POST",
      type: "application/json",
      auth: "Bearer k",
      body: '{"a":"é"}',
    });
    expect(response).toBeInstanceOf(Response);
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.headers.get("x-ratelimit-remaining")).toBe("7");
    expect(await response.json()).toEqual({ ok: true });
  });

  it("decodes a gzip-encoded reply", async () => {
    const url = await serve((_req, _body, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
      res.end(gzipSync(JSON.stringify({ text: "x".repeat(5_000) })));
    });
    const response = await httpTransport()(url, {});
    expect(response.headers.get("content-encoding")).toBeNull();
    expect(((await response.json()) as { text: string }).text).toHaveLength(5_000);
  });

  it("carries the openai client's calls, reusing one connection", async () => {
    const ports = new Set<number>();
    const url = await serve((req, _body, res) => {
      ports.add(req.socket.remotePort ?? 0);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(completion));
    });
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "k", fetch: httpTransport() });
    for (let i = 0; i < 3; i++) {
      const answer = await client.chat.completions.create({
        model: "m",
        messages: [{ role: "user", content: "hello" }],
      });
      expect(answer.choices[0]?.message.content).toBe("hi");
    }
    expect(ports.size).toBe(1);
  });

  it("gives the openai client a timeout error when the endpoint never answers", async () => {
    const url = await serve(() => {});
    const client = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: "k",
      fetch: httpTransport(),
      maxRetries: 0,
      timeout: 200,
    });
    const error = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "hello" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionTimeoutError);
  });

  it("gives a refused connection as a retryable, unreachable connection error", async () => {
    const url = await serve(() => {});
    const server = servers.pop()!;
    await new Promise((resolve) => server.close(resolve));
    const client = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: "k",
      fetch: httpTransport(),
      maxRetries: 0,
    });
    const error = await client.chat.completions
      .create({ model: "m", messages: [{ role: "user", content: "hello" }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(classifyFailure(error)).toMatchObject({ kind: "retry", unreachable: true });
    expect((classifyFailure(error) as { reason: string }).reason).toContain("ECONNREFUSED");
  });

  it("rejects with the signal's reason when the call is aborted", async () => {
    const url = await serve(() => {});
    const controller = new AbortController();
    const pending = httpTransport()(url, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ name: "AbortError" });
  });

  it("hands a Request object to the global fetch", async () => {
    const url = await serve((_req, body, res) => res.end(`echo ${body}`));
    const response = await httpTransport()(new Request(url, { method: "POST", body: "b" }));
    expect(await response.text()).toBe("echo b");
  });
});
