import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../src/materialize/run-result.js";
import { startSimulator } from "../../src/sim/simulator.js";
import { callsLostInFlight } from "../../src/store/ledger-queries.js";
import { migrate } from "../../src/store/migrator.js";
import { openPostgresStore, type Store } from "../../src/store/store.js";
import {
  answeredDocuments,
  brokenSuccesses,
  faultDocs,
  ledgerBill,
  pipelineAssets,
  runAssets,
  watch,
} from "../helpers/fault-run.js";
import { createProjectFixture, diamondProject } from "../helpers/project-fixture.js";
import { createTempDir } from "../helpers/temp-dir.js";
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresAvailable,
} from "../helpers/throwaway-postgres.js";

const available = await throwawayPostgresAvailable();

const DOCUMENTS = 200;
const MAX_CONCURRENCY = 8;
const LEDGER = { maxBatch: 50 } as const;

/** The fast variant of test/faults/long/database-restart.test.ts: one stop and start. */
describe.skipIf(!available)("Postgres going away during a run (fast)", () => {
  let pg: ThrowawayPostgres;
  let store: Store;
  let dir: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    pg = await startThrowawayPostgres();
    store = await openPostgresStore(pg.url);
    await migrate(store.db);
    dir = await createTempDir("database-restart-fast-");
  });
  afterAll(async () => {
    await store?.close();
    await pg?.dispose();
    await dir?.remove();
  });

  it("survives a one-second stop of the server mid-run without losing a billed call", async () => {
    const sim = await startSimulator({ port: 0, latencyMs: 20, jitterMs: 10, seed: 5 });
    const run = () =>
      runAssets({
        store,
        storageRoot: join(dir.path, ".strata", "storage"),
        assets: pipelineAssets(faultDocs(DOCUMENTS, "pg-stop")),
        endpoints: { sim: { baseURL: sim.url, maxConcurrency: MAX_CONCURRENCY } },
        models: {
          m: {
            endpoint: "sim",
            name: "stop-model",
            price: { inputPerMTok: 0.1, outputPerMTok: 0.4 },
          },
        },
        ledger: LEDGER,
      });
    let outage: Promise<void> | undefined;
    const stop = watch(() => {
      if (sim.ledger().totals.calls < DOCUMENTS / 4) return false;
      outage = (async () => {
        await pg.stop();
        await sleep(1_000);
        await pg.start();
      })();
      return true;
    });
    let first: RunResult;
    try {
      first = await run();
    } finally {
      stop();
    }
    await outage;
    expect(outage, "the server was stopped mid-run").toBeDefined();
    expect(["succeeded", "failed"]).toContain(first.status);
    expect(await brokenSuccesses(store, first.runId, join(dir.path, ".strata", "storage"))).toEqual(
      [],
    );
    const runIds = [first.runId];
    if (first.status === "failed") {
      expect(first.error).toMatch(/\S/);
      const second = await run();
      runIds.push(second.runId);
      expect(second.status).toBe("succeeded");
      // paid twice: only calls counted as dispatched whose outcome never reached the ledger
      expect(sim.ledger().totals.calls - DOCUMENTS).toBeLessThanOrEqual(
        await callsLostInFlight(store.db, first.runId),
      );
    } else {
      expect(sim.ledger().totals.calls).toBe(DOCUMENTS);
    }
    // every call the endpoint billed is on the ledger, and every document is answered
    expect(await ledgerBill(store, runIds)).toEqual(sim.ledger().totals);
    expect((await answeredDocuments(store, runIds)).size).toBe(DOCUMENTS);
    await sim.close();
  }, 30_000);

  it("exits 2 naming the host when DATABASE_URL points at a stopped server", async () => {
    const project = await createProjectFixture(diamondProject());
    await pg.stop();
    try {
      const result = await project.cli(["materialize", "--select", "*"], { DATABASE_URL: pg.url });
      expect(result.code).toBe(2);
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`127.0.0.1:${pg.port}`);
      expect(lines[0]).toMatch(/^strata: cannot reach Postgres/);
      expect(result.stdout).toBe("");
    } finally {
      await pg.start();
      await project.remove();
    }
  }, 30_000);
});
