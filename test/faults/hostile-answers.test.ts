import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../src/materialize/run-result.js";
import { findCachedAnswers } from "../../src/store/ledger-queries.js";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { readArrowFile } from "../../src/values/arrow-file.js";
import { storedValuePath } from "../../src/values/storage-path.js";
import { type FaultDoc, faultDocs, pipelineAssets, runAssets } from "../helpers/fault-run.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

// Answers no database column takes as they are (NUL, lone surrogates, bytes that are not UTF-8,
// megabytes) and answers without text (no choices, filtered, refused, cut off, empty). The first
// kind must be kept losslessly and answer a rerun for free; the second is a failed attempt,
// billed, never cached. Each answer is billed (usage) and the ledger must reconcile with it.

const HUGE = `${"long answer ".repeat(250_000)}\u0000end`;

/** What the endpoint answers a document with: its message text (or raw body), per attempt. */
type Reply =
  | { readonly content: string | null; readonly finish?: string; readonly refusal?: string }
  | { readonly choices: [] }
  | { readonly rawContent: Buffer };

const KEPT: Readonly<Record<string, Reply>> = {
  nul: { content: "before\u0000after" },
  "lone-surrogate": { content: "half an emoji \ud83d" },
  mark: { content: '\uffff"not an escape' },
  huge: { content: HUGE },
  "not-utf8": { rawContent: Buffer.from([0x62, 0x61, 0x64, 0x20, 0xff, 0xfe, 0xc3]) },
};

/** No text on the first attempt, retried, then a good answer. */
const RETRIED: Readonly<Record<string, Reply>> = {
  "no-choices": { choices: [] },
  "empty-stop": { content: "", finish: "stop" },
  "null-content": { content: null, finish: "stop" },
};

/** No text on every attempt, not retried. */
const FAILED: Readonly<Record<string, { reply: Reply; reason: RegExp }>> = {
  filtered: { reply: { content: null, finish: "content_filter" }, reason: /content filter/ },
  refused: { reply: { content: null, refusal: "I cannot help with that" }, reason: /refused/ },
  "cut-off": { reply: { content: "", finish: "length" }, reason: /max_tokens/ },
};

class HostileEndpoint {
  /** Calls per document, over every run. */
  readonly calls = new Map<string, number>();
  /** Tokens it billed (every answer carries usage), per document. */
  readonly billed = new Map<string, { prompt: number; completion: number }>();
  readonly #server: Server = createServer((req, res) => this.#handle(req, res));

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
      const request = JSON.parse(body) as { model: string; messages: { content: string }[] };
      const id = request.messages
        .at(-1)!
        .content.replace(/^Summarize /, "")
        .replace(/ #\d+$/, "");
      const call = (this.calls.get(id) ?? 0) + 1;
      this.calls.set(id, call);
      const usage = { prompt_tokens: 50 + id.length, completion_tokens: 3 + call };
      const spent = this.billed.get(id) ?? { prompt: 0, completion: 0 };
      this.billed.set(id, {
        prompt: spent.prompt + usage.prompt_tokens,
        completion: spent.completion + usage.completion_tokens,
      });
      const reply: Reply = KEPT[id] ??
        (call === 1 ? RETRIED[id] : undefined) ??
        FAILED[id]?.reply ?? { content: `answer to ${id}` };
      const completion = (choices: unknown[]) => ({
        id: `chatcmpl-${id}-${call}`,
        object: "chat.completion",
        created: 1_700_000_000,
        model: request.model,
        choices,
        usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
      });
      const choice = (message: Record<string, unknown>, finish = "stop") => ({
        index: 0,
        message: { role: "assistant", ...message },
        finish_reason: finish,
      });
      res.writeHead(200, { "content-type": "application/json" });
      if ("rawContent" in reply) {
        const [head, tail] = JSON.stringify(completion([choice({ content: "@@" })])).split("@@");
        res.end(Buffer.concat([Buffer.from(head!), reply.rawContent, Buffer.from(tail!)]));
      } else if ("choices" in reply) {
        res.end(JSON.stringify(completion([])));
      } else {
        const message = {
          content: reply.content,
          ...(reply.refusal !== undefined ? { refusal: reply.refusal } : {}),
        };
        res.end(JSON.stringify(completion([choice(message, reply.finish)])));
      }
    });
  }
}

interface LedgerRow {
  document_id: string;
  status: string;
  attempts: number;
  prompt_tokens: number;
  completion_tokens: number;
  cache_hit: boolean;
  request_hash: string;
  error: string | null;
}

describe.each(BACKENDS)("ctx.infer against an endpoint with hostile answers, on %s", (backend) => {
  const ids = [
    ...Object.keys(KEPT),
    ...Object.keys(RETRIED),
    ...Object.keys(FAILED),
    ...faultDocs(4, "ok").map((d) => d.id),
  ];
  const docs: FaultDoc[] = ids.map((id) => ({ id, text: `${id} #0` }));
  let store: TestStore;
  let dir: { path: string; remove(): Promise<void> };
  let endpoint: HostileEndpoint;
  /** What `parse` saw per run: the text ctx.infer hands the asset. */
  const seen: Array<Map<string, string>> = [];
  const runs: RunResult[] = [];

  const run = async () => {
    const texts = new Map<string, string>();
    seen.push(texts);
    const result = await runAssets({
      store,
      storageRoot: join(dir.path, ".strata", "storage"),
      assets: pipelineAssets(docs, {
        maxFailures: Object.keys(FAILED).length,
        parse: (text, doc) => {
          texts.set(doc.id, text);
          return text;
        },
      }),
      endpoints: { hostile: { baseURL: endpoint.url, maxConcurrency: 4 } },
      models: {
        m: {
          endpoint: "hostile",
          name: "hostile-model",
          price: { inputPerMTok: 1, outputPerMTok: 2 },
          maxAttempts: 3,
        },
      },
    });
    runs.push(result);
    return result;
  };

  const ledger = async (runId: string) =>
    (
      await sql<LedgerRow>`
        select document_id, status, attempts, prompt_tokens::int as prompt_tokens,
               completion_tokens::int as completion_tokens, cache_hit, request_hash, error
          from strata.inference_calls
         where run_id = ${runId} and status <> 'dispatched' order by id`.execute(store.db)
    ).rows;

  beforeAll(async () => {
    store = await createTestStore(backend);
    dir = await createTempDir("hostile-answers-");
    endpoint = new HostileEndpoint();
    await endpoint.listen();
    await run();
  }, 120_000);
  afterAll(async () => {
    await endpoint?.close();
    await store?.dispose();
    await dir?.remove();
  });

  it("succeeds within maxFailures, with every billed answer on the ledger", async () => {
    expect(runs[0]!.error).toBeNull();
    expect(runs[0]!.status).toBe("succeeded");
    const rows = await ledger(runs[0]!.runId);
    expect(new Set(rows.map((r) => r.document_id))).toEqual(new Set(ids));
    for (const id of ids) {
      const billed = endpoint.billed.get(id)!;
      const mine = rows.filter((r) => r.document_id === id);
      expect(
        {
          prompt: mine.reduce((t, r) => t + r.prompt_tokens, 0),
          completion: mine.reduce((t, r) => t + r.completion_tokens, 0),
        },
        id,
      ).toEqual(billed);
    }
  });

  it("keeps answers no column takes as they are, in the rows, the Arrow file and the ledger", async () => {
    const rows = await ledger(runs[0]!.runId);
    const step = runs[0]!.steps.find((s) => s.assetKey === "answers")!;
    const { rows: paths } = await sql<{ storage_path: string }>`
      select storage_path from strata.materializations where id = ${step.materializationId}`.execute(
      store.db,
    );
    const arrow = new Map(
      tableToRows(
        await readArrowFile(
          storedValuePath(join(dir.path, ".strata", "storage"), paths[0]!.storage_path),
        ),
      ).map((r) => [r.id as string, r.output as string | null]),
    );
    const hashes = new Map(rows.map((r) => [r.document_id, r.request_hash]));
    const cached = await findCachedAnswers(store.db, [...hashes.values()]);
    for (const id of Object.keys(KEPT)) {
      const reply = KEPT[id]!;
      const text = seen[0]!.get(id)!;
      if ("content" in reply) expect(text === reply.content, id).toBe(true);
      // not UTF-8: what the client decoded, U+FFFD for each bad byte
      else expect(text).toBe("bad \ufffd\ufffd\ufffd");
      expect(cached.get(hashes.get(id)!)?.output === text, id).toBe(true);
      // Arrow holds UTF-8: a lone surrogate becomes U+FFFD there, as in any UTF-8 file
      const inArrow = id === "lone-surrogate" ? "half an emoji \ufffd" : text;
      expect(arrow.get(id) === inArrow, id).toBe(true);
    }
  });

  it("records an answer without text as a billed failed attempt, retried only when it may change", async () => {
    const rows = await ledger(runs[0]!.runId);
    for (const id of Object.keys(RETRIED)) {
      const mine = rows.filter((r) => r.document_id === id);
      expect(
        mine.map((r) => [r.status, r.attempts]),
        id,
      ).toEqual([
        ["failed", 1],
        ["succeeded", 2],
      ]);
      expect(mine[0]!.prompt_tokens).toBeGreaterThan(0);
      expect(mine[0]!.error).toMatch(/no choices|no content|empty content|null content/);
      expect(seen[0]!.get(id)).toBe(`answer to ${id}`);
    }
    for (const [id, { reason }] of Object.entries(FAILED)) {
      expect(endpoint.calls.get(id), id).toBe(1);
      const mine = rows.filter((r) => r.document_id === id);
      expect(mine).toHaveLength(1);
      expect(mine[0]!.status).toBe("failed");
      expect(mine[0]!.prompt_tokens).toBeGreaterThan(0);
      expect(mine[0]!.error).toMatch(reason);
    }
  });

  it("answers a rerun from the ledger, paying again only for answers without text", async () => {
    const before = new Map(endpoint.calls);
    const rerun = await run();
    expect(rerun.status).toBe("succeeded");
    for (const id of ids) {
      const again = (endpoint.calls.get(id) ?? 0) - (before.get(id) ?? 0);
      expect(again, id).toBe(id in FAILED ? 1 : 0);
      if (!(id in FAILED)) expect(seen[1]!.get(id) === seen[0]!.get(id), id).toBe(true);
    }
    const rows = await ledger(rerun.runId);
    expect(
      rows.filter((r) => !r.cache_hit && r.prompt_tokens > 0).map((r) => r.document_id),
    ).toEqual(expect.arrayContaining(Object.keys(FAILED)));
    expect(rows.filter((r) => !r.cache_hit && !(r.document_id in FAILED))).toEqual([]);
  });
});
