import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import {
  answeredDocuments,
  faultDocs,
  ledgerBill,
  pipelineAssets,
  runAssets,
  watch,
} from "../helpers/fault-run.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { createTestStore, type TestStore } from "../helpers/test-store.js";
import { freePort } from "../helpers/throwaway-postgres.js";

const PRICE = { inputPerMTok: 0.15, outputPerMTok: 0.6 } as const;

/** An hour: a run that waited for an outage tolerance or a server's delay would time out. */
const HOUR_MS = 3_600_000;

/**
 * A small OpenAI-compatible endpoint whose first answer carries `first` (a status and headers);
 * every later call is answered at once with a correct completion.
 */
class OneShotEndpoint {
  readonly statuses: number[] = [];
  readonly #server: Server;
  readonly #first: { readonly status: number; readonly headers: Record<string, string> };

  constructor(first: { readonly status: number; readonly headers: Record<string, string> }) {
    this.#first = first;
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
      const request = JSON.parse(body) as { model: string };
      const first = this.statuses.length === 0;
      const status = first ? this.#first.status : 200;
      this.statuses.push(status);
      const headers = { "content-type": "application/json", ...(first ? this.#first.headers : {}) };
      res.writeHead(status, headers);
      if (status !== 200) {
        res.end(
          JSON.stringify({
            error: { message: "slow down (test)", type: "requests", code: "rate_limit_exceeded" },
          }),
        );
        return;
      }
      res.end(
        JSON.stringify({
          id: `chatcmpl-${this.statuses.length}`,
          object: "chat.completion",
          created: 1_700_000_000,
          model: request.model,
          choices: [
            { index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" },
          ],
          usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 },
        }),
      );
    });
  }
}

/**
 * The fast half of the endpoint outage suite (test/faults/long/endpoint-outage.test.ts): an
 * endpoint that is not running is reported within the step, one that was up and went away is
 * still retried through its outage, and a server's delay of hours is never waited out.
 */
describe("a run whose endpoint is not there, or asks to wait for hours", () => {
  let store: TestStore;
  let dir: { path: string; remove(): Promise<void> };
  const cleanups: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    store = await createTestStore("pglite");
    dir = await createTempDir("endpoint-outage-fast-");
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await store?.dispose();
    await dir?.remove();
  });

  const storageRoot = () => join(dir.path, ".strata", "storage");

  it("fails the step within a few connection attempts, naming the endpoint and its URL, when nothing listens", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const maxConcurrency = 8;
    const DOCUMENTS = 300;
    // An outage tolerance of an hour: only giving up on an endpoint that never answered can end
    // this run within the test's timeout.
    const result = await runAssets({
      store,
      storageRoot: storageRoot(),
      assets: pipelineAssets(faultDocs(DOCUMENTS, "refused"), { maxFailures: DOCUMENTS }),
      endpoints: { down: { baseURL: url, maxConcurrency, outageToleranceMs: HOUR_MS } },
      models: { m: { endpoint: "down", name: "refused-model", price: PRICE } },
    });
    expect(result.status).toBe("failed");
    const answers = result.steps.find((s) => s.assetKey === "answers")!;
    expect(answers.status).toBe("failed");
    // the step fails even though maxFailures allows every document to fail
    expect(answers.error).toContain(`endpoint "down" at ${url} cannot be reached`);
    expect(answers.error).toContain("ECONNREFUSED");
    expect(answers.error).toContain("is its server running?");
    expect(result.steps.find((s) => s.assetKey === "digest")!.status).toBe("skipped");

    // Each call that was sent has its failed row with its attempts: a few connections in all,
    // not one per document, and not retried for the outage tolerance.
    const { rows } = await sql<{ status: string; attempts: number; error: string | null }>`
      select status, attempts, error from strata.inference_calls
      where run_id = ${result.runId} and status <> 'dispatched'`.execute(store.db);
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.status === "failed")).toBe(true);
    const attempts = rows.reduce((sum, r) => sum + r.attempts, 0);
    expect(attempts).toBeLessThanOrEqual(3 * maxConcurrency);
    for (const r of rows) expect(r.error).toContain(`endpoint "down" at ${url}`);
  });

  it("refuses a baseURL without a scheme when a project runs from code, without retrying it", async () => {
    // runAssets skips the CLI's load-time validation, as a user's own script may
    const result = await runAssets({
      store,
      storageRoot: storageRoot(),
      assets: pipelineAssets(faultDocs(5, "no-scheme")),
      endpoints: { bad: { baseURL: "localhost:1/v1", outageToleranceMs: HOUR_MS } },
      models: { m: { endpoint: "bad", name: "no-scheme-model", price: PRICE } },
    });
    expect(result.status).toBe("failed");
    const answers = result.steps.find((s) => s.assetKey === "answers")!;
    expect(answers.error).toContain(
      'endpoint "bad" has an invalid baseURL "localhost:1/v1": it has no scheme',
    );
  });

  it("falls back to the next model when the first model's endpoint is not running", async () => {
    const port = await freePort();
    const spare = await startSimulator({ port: 0, latencyMs: 1 });
    cleanups.push(() => spare.close());
    const result = await runAssets({
      store,
      storageRoot: storageRoot(),
      assets: pipelineAssets(faultDocs(50, "refused-fallback"), { fallback: ["spare"] }),
      endpoints: {
        down: { baseURL: `http://127.0.0.1:${port}/v1`, outageToleranceMs: HOUR_MS },
        up: { baseURL: spare.url },
      },
      models: {
        m: { endpoint: "down", name: "refused-main", price: PRICE },
        spare: { endpoint: "up", name: "refused-spare", price: PRICE },
      },
    });
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    expect(spare.ledger().totals.calls).toBe(50);
  });

  it("still retries through the outage of an endpoint that answered before it went away", async () => {
    const port = await freePort();
    const sims: Simulator[] = [await startSimulator({ port, latencyMs: 5, seed: 3 })];
    cleanups.push(async () => {
      for (const sim of sims) await sim.close();
    });
    const DOCUMENTS = 120;
    let outage: Promise<void> | undefined;
    const stop = watch(() => {
      if (sims[0]!.ledger().totals.calls < 20) return false;
      outage = (async () => {
        await sims[0]!.close();
        await new Promise((resolve) => setTimeout(resolve, 300));
        sims.push(await startSimulator({ port, latencyMs: 5, seed: 3 }));
      })();
      return true;
    });
    let result: Awaited<ReturnType<typeof runAssets>>;
    try {
      result = await runAssets({
        store,
        storageRoot: storageRoot(),
        assets: pipelineAssets(faultDocs(DOCUMENTS, "went-away")),
        endpoints: { sim: { baseURL: `http://127.0.0.1:${port}/v1`, maxConcurrency: 8 } },
        models: { m: { endpoint: "sim", name: "went-away-model", price: PRICE } },
      });
    } finally {
      stop();
    }
    await outage;
    expect(sims, "the endpoint went away and came back").toHaveLength(2);
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    expect(sims[1]!.ledger().totals.calls).toBeGreaterThan(0);
    expect((await answeredDocuments(store, [result.runId])).size).toBe(DOCUMENTS);
    const billed = sims[0]!.ledger().totals.calls + sims[1]!.ledger().totals.calls;
    expect((await ledgerBill(store, [result.runId])).calls).toBe(billed);
  });

  it.each([
    ["retry-after: 86400 on a 429", 429, () => ({ "retry-after": "86400" })],
    ["retry-after-ms of a day on a 429", 429, () => ({ "retry-after-ms": String(86_400_000) })],
    [
      "retry-after as an HTTP date a day away on a 503",
      503,
      () => ({ "retry-after": new Date(Date.now() + 86_400_000).toUTCString() }),
    ],
    [
      "x-ratelimit-remaining-requests: 0 with a 24h reset on a success",
      200,
      () => ({
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-reset-requests": "24h",
      }),
    ],
  ] as const)("does not wait out %s, and the run completes", async (name, status, headers) => {
    const endpoint = new OneShotEndpoint({ status, headers: headers() });
    await endpoint.listen();
    cleanups.push(() => endpoint.close());
    const tag = `day-${name.replace(/[^a-z0-9]+/gi, "-")}`;
    const result = await runAssets({
      store,
      storageRoot: storageRoot(),
      assets: pipelineAssets(faultDocs(4, tag)),
      endpoints: { slow: { baseURL: endpoint.url, maxConcurrency: 1 } },
      models: { m: { endpoint: "slow", name: `${tag}-model`, price: PRICE } },
    });
    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    // the one answer that asked for a day, then every document answered
    expect(endpoint.statuses[0]).toBe(status);
    expect(endpoint.statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(endpoint.statuses).toHaveLength(status === 200 ? 4 : 5);
  });
});
