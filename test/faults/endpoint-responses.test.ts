import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../src/materialize/run-result.js";
import { faultDocs, pipelineAssets, runAssets } from "../helpers/fault-run.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { createTestStore, type TestStore } from "../helpers/test-store.js";

/** What the endpoint answers a document's first attempt with, by document id. */
const FIRST_ANSWERS = {
  "no-usage": "200 with no usage",
  negative: "usage with negative prompt_tokens",
  absurd: "prompt_tokens of 1e12",
  "cached-over": "cached_tokens larger than prompt_tokens",
  "not-json": "a body that is not JSON",
} as const;
type BadKind = keyof typeof FIRST_ANSWERS;

interface Billed {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/**
 * A tiny OpenAI-compatible endpoint that misbehaves on purpose: each document of
 * {@link FIRST_ANSWERS} gets a bad answer first and a correct one after; `too-long` always gets
 * a 400 `context_length_exceeded`; every other document is answered correctly at once. Correct
 * answers report `prompt_tokens` = 100 + the prompt's length and 7 completion tokens.
 */
class MisbehavingEndpoint {
  readonly attempts = new Map<string, number>();
  /** The correct answers it gave, by document id. */
  readonly billed = new Map<string, Billed>();
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1`;
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    let body = "";
    req.setEncoding("utf8").on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const request = JSON.parse(body) as {
        model: string;
        messages: { content: string }[];
      };
      const prompt = request.messages.at(-1)!.content;
      const id = prompt.replace(/^Summarize /, "").replace(/ #\d+$/, "");
      const doc = prompt.replace(/^Summarize /, "");
      const attempt = (this.attempts.get(doc) ?? 0) + 1;
      this.attempts.set(doc, attempt);
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      if (id === "too-long") {
        json(400, {
          error: {
            message: "This model's maximum context length is 8 tokens. (test)",
            type: "invalid_request_error",
            param: "messages",
            code: "context_length_exceeded",
          },
        });
        return;
      }
      const good = { prompt_tokens: 100 + prompt.length, completion_tokens: 7 };
      const completion = (usage: unknown) => ({
        id: `chatcmpl-${doc}-${attempt}`,
        object: "chat.completion",
        created: 1_700_000_000,
        model: request.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: `answer to ${doc}` },
            finish_reason: "stop",
          },
        ],
        ...(usage === undefined ? {} : { usage }),
      });
      if (attempt === 1 && id in FIRST_ANSWERS) {
        switch (id as BadKind) {
          case "no-usage":
            json(200, completion(undefined));
            return;
          case "negative":
            json(200, completion({ ...good, prompt_tokens: -5, total_tokens: 2 }));
            return;
          case "absurd":
            json(200, completion({ ...good, prompt_tokens: 1e12, total_tokens: 1e12 + 7 }));
            return;
          case "cached-over":
            json(
              200,
              completion({
                ...good,
                total_tokens: good.prompt_tokens + 7,
                prompt_tokens_details: { cached_tokens: good.prompt_tokens + 50 },
              }),
            );
            return;
          case "not-json":
            res.writeHead(200, { "content-type": "application/json" });
            res.end("<html><body>502 Bad Gateway</body></html>");
            return;
        }
      }
      this.billed.set(doc, { promptTokens: good.prompt_tokens, completionTokens: 7 });
      json(200, completion({ ...good, total_tokens: good.prompt_tokens + 7 }));
    });
  }
}

interface Row {
  document_id: string;
  status: string;
  attempts: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  cost_usd: string;
  error: string | null;
}

describe("ctx.infer against an endpoint that answers badly", () => {
  let store: TestStore;
  let dir: { path: string; remove(): Promise<void> };
  let endpoint: MisbehavingEndpoint;
  let result: RunResult;
  let rows: Row[];
  const ids = [...Object.keys(FIRST_ANSWERS), "too-long"];
  const docs = [...faultDocs(10, "ok"), ...ids.map((id) => ({ id, text: `${id} #0` }))];

  beforeAll(async () => {
    store = await createTestStore("pglite");
    dir = await createTempDir("endpoint-responses-");
    endpoint = new MisbehavingEndpoint();
    await endpoint.listen();
    result = await runAssets({
      store,
      storageRoot: join(dir.path, ".strata", "storage"),
      assets: pipelineAssets(docs, { maxFailures: 1 }),
      endpoints: { bad: { baseURL: endpoint.url, maxConcurrency: 4 } },
      models: {
        m: { endpoint: "bad", name: "bad-model", price: { inputPerMTok: 1, outputPerMTok: 2 } },
      },
    });
    ({ rows } = await sql<Row>`
      select document_id, status, attempts, prompt_tokens::int as prompt_tokens,
             cached_tokens::int as cached_tokens, completion_tokens::int as completion_tokens,
             trim_scale(cost_usd)::text as cost_usd, error
      from strata.inference_calls
      where run_id = ${result.runId} and status <> 'dispatched' order by id`.execute(store.db));
  });
  afterAll(async () => {
    await endpoint?.close();
    await store?.dispose();
    await dir?.remove();
  });

  const rowsOf = (doc: string) => rows.filter((r) => r.document_id === doc);

  it("lets one document fail with context_length_exceeded and the step succeeds within maxFailures", () => {
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    expect(result.steps.map((s) => s.status)).toEqual(["succeeded", "succeeded", "succeeded"]);
    const tooLong = rowsOf("too-long");
    expect(tooLong).toHaveLength(1);
    expect(tooLong[0]).toMatchObject({ status: "failed", prompt_tokens: 0, cost_usd: "0" });
    expect(tooLong[0]!.error).toMatch(/400/);
    expect(tooLong[0]!.error).toMatch(/maximum context length/);
    // a 400 is final: asked once, not retried
    expect(endpoint.attempts.get("too-long #0")).toBe(1);
  });

  it.each([
    ["no-usage", /no usage/],
    ["negative", /impossible prompt_tokens \(-5\)/],
    ["absurd", /impossible prompt_tokens \(1000000000000\)/],
    ["cached-over", /more cached_tokens/],
  ] as const)(
    "records the %s answer as a failed attempt with its reason, then the retry's tokens",
    (doc, reason) => {
      const calls = rowsOf(doc);
      expect(calls.map((c) => c.status)).toEqual(["failed", "succeeded"]);
      expect(calls[0]).toMatchObject({ prompt_tokens: 0, completion_tokens: 0, cost_usd: "0" });
      expect(calls[0]!.error).toMatch(reason);
      const billed = endpoint.billed.get(`${doc} #0`)!;
      expect(calls[1]).toMatchObject({
        attempts: 2,
        prompt_tokens: billed.promptTokens,
        cached_tokens: 0,
        completion_tokens: 7,
        error: null,
      });
      expect(calls[1]!.cost_usd).not.toBe("0");
    },
  );

  it("records a body that is not JSON as a failed attempt with the reason, then the retry's tokens", () => {
    expect(endpoint.attempts.get("not-json #0")).toBe(2);
    const calls = rowsOf("not-json");
    expect(calls.map((c) => c.status)).toEqual(["failed", "succeeded"]);
    expect(calls[0]).toMatchObject({ prompt_tokens: 0, completion_tokens: 0, cost_usd: "0" });
    expect(calls[0]!.error).toMatch(/JSON/);
    expect(calls[1]!.prompt_tokens).toBe(endpoint.billed.get("not-json #0")!.promptTokens);
  });

  it("never records a succeeded call without tokens, and the ledger equals what was answered", () => {
    const succeeded = rows.filter((r) => r.status === "succeeded");
    expect(succeeded.filter((r) => r.prompt_tokens <= 0 || r.cost_usd === "0")).toEqual([]);
    expect(succeeded.map((r) => r.document_id).sort()).toEqual(
      docs
        .map((d) => d.id)
        .filter((id) => id !== "too-long")
        .sort(),
    );
    const sum = (pick: (b: Billed) => number) =>
      [...endpoint.billed.values()].reduce((total, b) => total + pick(b), 0);
    expect(succeeded.reduce((t, r) => t + r.prompt_tokens, 0)).toBe(sum((b) => b.promptTokens));
    expect(succeeded.reduce((t, r) => t + r.completion_tokens, 0)).toBe(
      sum((b) => b.completionTokens),
    );
    // every bad first answer is on the ledger as a failed row with no tokens, or not at all
    const failed = rows.filter((r) => r.status === "failed");
    expect(failed.filter((r) => r.prompt_tokens !== 0)).toEqual([]);
  });
});
