import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResult } from "../../../src/materialize/run-result.js";
import { startSimulator } from "../../../src/sim/simulator.js";
import { callsLostInFlight } from "../../../src/store/ledger-queries.js";
import { migrate } from "../../../src/store/migrator.js";
import { openPostgresStore, type Store } from "../../../src/store/store.js";
import { storageRootOf } from "../../../src/values/storage-path.js";
import {
  answeredDocuments,
  brokenSuccesses,
  faultDocs,
  ledgerBill,
  pipelineAssets,
  recordedSteps,
  runAssets,
  watch,
} from "../../helpers/fault-run.js";
import { createProjectFixture } from "../../helpers/project-fixture.js";
import { startCliProcess } from "../../helpers/run-cli.js";
import { createTempDir } from "../../helpers/temp-dir.js";
import {
  startThrowawayPostgres,
  type ThrowawayPostgres,
  throwawayPostgresAvailable,
} from "../../helpers/throwaway-postgres.js";

const available = await throwawayPostgresAvailable();

const DOCUMENTS = 1_000;
const MAX_CONCURRENCY = 16;
const LEDGER = { maxBatch: 100 } as const;

/**
 * DESIGN.md, failure semantics: Postgres restarting in the middle of a run. strata retries its
 * writes and reconnects, or fails the run cleanly with everything already answered recorded;
 * never a half-written step reported as success, and a resume pays only for what was lost.
 */
describe.skipIf(!available)("a run whose Postgres restarts mid-run", () => {
  let pg: ThrowawayPostgres;
  let store: Store;
  let dir: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    pg = await startThrowawayPostgres();
    store = await openPostgresStore(pg.url);
    await migrate(store.db);
    dir = await createTempDir("database-restart-");
  });
  afterAll(async () => {
    await store?.close();
    await pg?.dispose();
    await dir?.remove();
  });

  it("retries its writes or fails cleanly, and a resume pays only for unrecorded documents", async () => {
    const sim = await startSimulator({ port: 0, latencyMs: 40, jitterMs: 20, seed: 11 });
    const storageRoot = join(dir.path, ".strata", "storage");
    const run = () =>
      runAssets({
        store,
        storageRoot,
        assets: pipelineAssets(faultDocs(DOCUMENTS, "pg-restart")),
        endpoints: { sim: { baseURL: sim.url, maxConcurrency: MAX_CONCURRENCY } },
        models: {
          m: {
            endpoint: "sim",
            name: "restart-model",
            price: { inputPerMTok: 0.15, outputPerMTok: 0.6 },
          },
        },
        ledger: LEDGER,
      });

    // Restart the server (fast shutdown: every session is cut) once a third of the calls are in.
    let restart: Promise<number> | undefined;
    let billedAtRestart = 0;
    const stop = watch(() => {
      if (sim.ledger().totals.calls < DOCUMENTS / 3) return false;
      billedAtRestart = sim.ledger().totals.calls;
      const started = Date.now();
      restart = pg.restart().then(() => Date.now() - started);
      return true;
    });
    let first: RunResult;
    try {
      first = await run();
    } finally {
      stop();
    }
    const restartMs = await restart;
    expect(restartMs, "the restart happened").toBeTypeOf("number");
    expect(billedAtRestart).toBeLessThan(DOCUMENTS);

    // The run ends succeeded or failed with a reason, and the database says the same.
    expect(["succeeded", "failed"]).toContain(first.status);
    if (first.status === "failed") expect(first.error).toMatch(/\S/);
    else expect(first.error).toBeNull();
    const runRow = await store.db
      .selectFrom("strata.runs")
      .select(["status", "error"])
      .where("id", "=", first.runId)
      .executeTakeFirstOrThrow();
    expect(runRow.status).toBe(first.status);

    // Never a half-written step reported as success.
    expect(await brokenSuccesses(store, first.runId, storageRoot)).toEqual([]);
    const recorded = await recordedSteps(store, first.runId);
    for (const step of first.steps) {
      if (step.status === "succeeded") expect(recorded[step.assetKey]).toBe("succeeded");
      else expect(recorded[step.assetKey]).not.toBe("succeeded");
    }

    const afterFirst = sim.ledger().totals;
    const runIds = [first.runId];
    let second: RunResult | undefined;
    if (first.status === "succeeded") {
      // Every call the endpoint billed is on the ledger, and every document is answered.
      expect(afterFirst.calls).toBe(DOCUMENTS);
      expect(await ledgerBill(store, runIds)).toEqual(afterFirst);
    } else {
      // A resume: the ledger's cache answers what was recorded; only the rest is paid again.
      second = await run();
      runIds.push(second.runId);
      expect(second.error).toBeNull();
      expect(second.status).toBe("succeeded");
      expect(await brokenSuccesses(store, second.runId, storageRoot)).toEqual([]);
      const paidTwice = sim.ledger().totals.calls - DOCUMENTS;
      expect(paidTwice).toBeGreaterThanOrEqual(0);
      // paid twice: only calls counted as dispatched whose outcome never reached the ledger
      expect(paidTwice).toBeLessThanOrEqual(await callsLostInFlight(store.db, first.runId));
      // What the endpoint billed over both runs is on the ledger.
      expect(await ledgerBill(store, runIds)).toEqual(sim.ledger().totals);
    }
    expect((await answeredDocuments(store, runIds)).size).toBe(DOCUMENTS);
    console.info(
      `database restart: ${restartMs} ms at ${billedAtRestart} of ${DOCUMENTS} calls; first run ${first.status}${
        first.error === null ? "" : ` (${first.error})`
      }; ${second === undefined ? "no resume" : `resume ${second.status}, paid twice ${sim.ledger().totals.calls - DOCUMENTS}`}`,
    );
    await sim.close();
  }, 180_000);
});

/** A project of `count` documents answered by model `m` on the endpoint at `baseURL`. */
function cliProject(baseURL: string, count: number): string {
  return `import { asset, defineProject } from "strata";

const docs = Array.from({ length: ${count} }, (_, i) => ({ id: "cli-" + i, text: "document " + i }));
export const source = asset({ key: "docs", compute: async () => docs });
export const answers = asset({
  key: "answers",
  deps: { source },
  compute: async (ctx, { source }) =>
    ctx.infer(source, {
      model: "m",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: "Summarize " + d.text }],
      params: { max_tokens: 24 },
    }),
});

export default defineProject({
  assets: [source, answers],
  endpoints: { sim: { baseURL: ${JSON.stringify(baseURL)}, maxConcurrency: 8 } },
  models: { m: { endpoint: "sim", name: "cli-restart", price: { inputPerMTok: 0.1, outputPerMTok: 0.4 } } },
});
`;
}

describe.skipIf(!available)("strata materialize while its Postgres restarts", () => {
  it("ends with a summary and a recorded run status, never a crash", async () => {
    const pg = await startThrowawayPostgres();
    const sim = await startSimulator({ port: 0, latencyMs: 30, seed: 3 });
    const project = await createProjectFixture(cliProject(sim.url, 400));
    try {
      const cli = startCliProcess(["materialize", "--select", "*", "--json"], {
        cwd: project.dir,
        env: { DATABASE_URL: pg.url },
        timeoutMs: 120_000,
      });
      let restart: Promise<void> | undefined;
      const stop = watch(() => {
        if (sim.ledger().totals.calls < 100) return false;
        restart = pg.restart();
        return true;
      });
      const result = await cli.result.finally(stop);
      await restart;
      expect(restart, "the restart happened mid-run").toBeDefined();
      // a clean end: exit 0 (retried) or 1 (failed, with its reason), the JSON summary printed
      expect(result.stderr).not.toMatch(/terminating connection|Connection terminated|node:events/);
      expect([0, 1]).toContain(result.code);
      const out = JSON.parse(result.stdout) as { runId: string; status: string };
      const store = await openPostgresStore(pg.url);
      try {
        const run = await store.db
          .selectFrom("strata.runs")
          .select("status")
          .where("id", "=", out.runId)
          .executeTakeFirstOrThrow();
        expect(run.status).toBe(out.status);
        expect(await brokenSuccesses(store, out.runId, storageRootOf(project.dir))).toEqual([]);
        if (out.status === "succeeded") {
          expect(await ledgerBill(store, [out.runId])).toEqual(sim.ledger().totals);
        }
      } finally {
        await store.close();
      }
    } finally {
      await project.remove();
      await sim.close();
      await pg.dispose();
    }
  }, 180_000);
});
