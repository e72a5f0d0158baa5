import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EndpointConfig, ModelConfig } from "../../../src/assets/project-definition.js";
import type { RunResult } from "../../../src/materialize/run-result.js";
import type { SimModelBill } from "../../../src/sim/sim-ledger.js";
import { type Simulator, startSimulator } from "../../../src/sim/simulator.js";
import {
  answeredDocuments,
  faultDocs,
  ledgerBill,
  pipelineAssets,
  runAssets,
  watch,
} from "../../helpers/fault-run.js";
import { createTempDir } from "../../helpers/temp-dir.js";
import { createTestStore, type TestStore } from "../../helpers/test-store.js";
import { freePort } from "../../helpers/throwaway-postgres.js";

const PRICE = { inputPerMTok: 0.15, outputPerMTok: 0.6 } as const;

interface ResettingServer {
  connections(): number;
  close(): Promise<void>;
}

/** A TCP server on `port` that resets every connection it accepts, counting them. */
function resettingServer(port: number): Promise<ResettingServer> {
  let count = 0;
  const server = createServer((socket: Socket) => {
    count += 1;
    socket.resetAndDestroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () =>
      resolve({
        connections: () => count,
        close: () => new Promise((done) => server.close(() => done())),
      }),
    );
  });
}

function addBills(a: SimModelBill, b: SimModelBill): SimModelBill {
  return {
    calls: a.calls + b.calls,
    promptTokens: a.promptTokens + b.promptTokens,
    cachedTokens: a.cachedTokens + b.cachedTokens,
    completionTokens: a.completionTokens + b.completionTokens,
  };
}

/**
 * DESIGN.md, failure semantics: an endpoint that goes down mid-run. Down for a while and back:
 * calls retry and the run completes. Down for good: documents end `failed` with the reason and a
 * later resume pays only for those documents.
 */
describe("a run whose endpoint goes down", () => {
  let store: TestStore;
  let dir: { path: string; remove(): Promise<void> };
  const sims: Simulator[] = [];

  beforeAll(async () => {
    store = await createTestStore("pglite");
    dir = await createTempDir("endpoint-outage-");
  });
  afterAll(async () => {
    for (const sim of sims) await sim.close();
    await store?.dispose();
    await dir?.remove();
  });

  const sim = async (port: number) => {
    const started = await startSimulator({ port, latencyMs: 20, jitterMs: 10, seed: 9 });
    sims.push(started);
    return started;
  };
  const run = (
    tag: string,
    count: number,
    endpoint: EndpointConfig,
    model: Partial<ModelConfig> = {},
  ): Promise<RunResult> =>
    runAssets({
      store,
      storageRoot: join(dir.path, ".strata", "storage"),
      assets: pipelineAssets(faultDocs(count, tag)),
      endpoints: { sim: endpoint },
      models: { m: { endpoint: "sim", name: `${tag}-model`, price: PRICE, ...model } },
    });

  it("retries through a 30-second outage and completes, with both endpoints' bills on the ledger", async () => {
    const port = await freePort();
    const first = await sim(port);
    const DOCUMENTS = 600;
    let second: Simulator | undefined;
    let outage: Promise<void> | undefined;
    let downAt = 0;
    const stop = watch(() => {
      if (first.ledger().totals.calls < 200) return false;
      downAt = first.ledger().totals.calls;
      outage = (async () => {
        await first.close();
        await sleep(30_000);
        second = await sim(port);
      })();
      return true;
    });
    let result: RunResult;
    const started = Date.now();
    try {
      result = await run("outage30", DOCUMENTS, {
        baseURL: first.url,
        maxConcurrency: 16,
      });
    } finally {
      stop();
    }
    await outage;
    const seconds = (Date.now() - started) / 1000;
    // the run outlasted the outage: documents left when it went down were answered after it
    expect(second, "the endpoint came back").toBeDefined();
    expect(downAt).toBeLessThan(DOCUMENTS);

    expect(result.error).toBeNull();
    expect(result.status).toBe("succeeded");
    expect((await answeredDocuments(store, [result.runId])).size).toBe(DOCUMENTS);
    const bill = addBills(first.ledger().totals, second!.ledger().totals);
    expect(second!.ledger().totals.calls).toBeGreaterThan(0);
    expect(bill.calls).toBe(DOCUMENTS);
    expect(await ledgerBill(store, [result.runId])).toEqual(bill);
    console.info(
      `endpoint outage: down at ${downAt} of ${DOCUMENTS} calls for 30 s; run ${result.status} in ${seconds.toFixed(1)} s; first sim billed ${first.ledger().totals.calls}, second ${second!.ledger().totals.calls}`,
    );
  }, 180_000);

  it("fails the documents left when the endpoint is down for good, and a resume pays only for them", async () => {
    const port = await freePort();
    const first = await sim(port);
    const DOCUMENTS = 300;
    let downAt = 0;
    let closedAt = 0;
    const stop = watch(() => {
      if (first.ledger().totals.calls < 100) return false;
      downAt = first.ledger().totals.calls;
      closedAt = Date.now();
      void first.close();
      return true;
    });
    const endpoint = { baseURL: first.url, maxConcurrency: 64, outageToleranceMs: 2_000 };
    let result: RunResult;
    try {
      result = await run("down-for-good", DOCUMENTS, endpoint);
    } finally {
      stop();
    }
    const failingSeconds = (Date.now() - closedAt) / 1000;
    expect(downAt).toBeGreaterThan(0);
    expect(result.status).toBe("failed");
    const answers = result.steps.find((s) => s.assetKey === "answers")!;
    expect(answers.status).toBe("failed");
    expect(answers.error).toMatch(/documents failed, more than maxFailures \(0\)/);
    expect(answers.error).toMatch(/connection/i);
    expect(result.steps.find((s) => s.assetKey === "digest")!.status).toBe("skipped");

    // every document the endpoint did not answer ends failed with the connection error
    const { rows } = await sql<{ document_id: string; error: string | null }>`
      select document_id, error from strata.inference_calls
      where run_id = ${result.runId} and status = 'failed'`.execute(store.db);
    const failed = new Set(rows.map((r) => r.document_id));
    const answered = await answeredDocuments(store, [result.runId]);
    expect(answered.size).toBe(first.ledger().totals.calls);
    expect(failed.size).toBe(DOCUMENTS - answered.size);
    for (const r of rows) expect(r.error).toMatch(/connection/i);
    expect(await ledgerBill(store, [result.runId])).toEqual(first.ledger().totals);

    // back up: a resume pays for exactly the failed documents
    const back = await sim(port);
    const resumed = await run("down-for-good", DOCUMENTS, endpoint);
    expect(resumed.error).toBeNull();
    expect(resumed.status).toBe("succeeded");
    expect(back.ledger().totals.calls).toBe(failed.size);
    const { rows: paid } = await sql<{ document_id: string }>`
      select document_id from strata.inference_calls
      where run_id = ${resumed.runId} and status = 'succeeded' and not cache_hit`.execute(store.db);
    expect(new Set(paid.map((r) => r.document_id))).toEqual(failed);
    console.info(
      `endpoint down for good: down at ${downAt} of ${DOCUMENTS}; ${failed.size} documents failed ${failingSeconds.toFixed(1)} s after the close; resume billed ${back.ledger().totals.calls}`,
    );
  }, 180_000);

  it("gives up on an endpoint down for good within its outage tolerance, however many documents are left", async () => {
    const port = await freePort();
    const first = await sim(port);
    // Once the simulator is gone, a server on its port resets every connection (an endpoint
    // that is down, as the client sees it) and counts them: each is one attempt of a document.
    let resetter: ResettingServer | undefined;
    let closing: Promise<void> | undefined;
    const stop = watch(() => {
      if (first.ledger().totals.calls < 20) return false;
      closing = (async () => {
        await first.close();
        resetter = await resettingServer(port);
      })();
      return true;
    });
    const DOCUMENTS = 420;
    let result: RunResult;
    try {
      // 4 calls in flight (8 workers) and 400 documents left when the endpoint goes away
      result = await run("down-many", DOCUMENTS, {
        baseURL: first.url,
        maxConcurrency: 4,
        outageToleranceMs: 2_000,
      });
    } finally {
      stop();
    }
    await closing;
    await resetter?.close();
    expect(result.status).toBe("failed");
    const left = DOCUMENTS - first.ledger().totals.calls;
    const attempts = resetter!.connections();
    console.info(
      `endpoint down for good, ${left} documents left: ${attempts} attempts before the run failed`,
    );
    // The outage clock is the endpoint's: once it has run out, each document left fails at its
    // first attempt. A clock per document would retry each one for the tolerance: several
    // attempts per document.
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThan(1.5 * left);
  }, 300_000);
});
