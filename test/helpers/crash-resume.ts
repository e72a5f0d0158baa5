import { sql } from "kysely";
import { expect } from "vitest";
import { SeededRandom } from "../../src/sim/seeded-random.js";
import type { SimModelBill } from "../../src/sim/sim-ledger.js";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import { callsLostInFlight } from "../../src/store/ledger-queries.js";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import type { Row } from "../../src/values/arrow-encoder.js";
import { readArrowFile } from "../../src/values/arrow-file.js";
import { storageRootOf, storedValuePath } from "../../src/values/storage-path.js";
import { createProjectFixture, type ProjectFixture } from "./project-fixture.js";
import { type CliResult, startCliProcess } from "./run-cli.js";
import { type Backend, createTestDatabase } from "./test-store.js";

// The crash/resume loop of the fault-tolerance suites: `strata materialize` is SIGKILLed at
// seeded random moments of an inference run against the simulator (in this process, reached over
// loopback) and resumed with `strata runs resume` each time. Run `npm run build` first.

/** The simulated model the project calls. */
export const CRASH_MODEL = "crash-small";

/** How often the kill loop samples the simulator's bill, in milliseconds. */
const POLL_MS = 10;

/** One crash/resume experiment. */
export interface CrashResumeConfig {
  readonly backend: Backend;
  readonly documents: number;
  readonly kills: number;
  /** Seeds the kill moments and the simulator. */
  readonly seed: number;
  readonly maxConcurrency: number;
  readonly latencyMs: number;
  readonly jitterMs: number;
}

/**
 * What happened at one kill. Every bound the suite checks comes from these counts, never from
 * timing: the calls the client had in flight (counted as dispatched on the ledger, with no
 * outcome there) are the only calls a kill may make the endpoint bill twice.
 */
export interface KillRecord {
  readonly kill: number;
  /** The run that was killed. */
  readonly runId: string;
  /** The simulator's billed calls when the process was started, and the count it was killed at. */
  readonly billedAtStart: number;
  readonly target: number;
  readonly billedAtKill: number;
  /** Requests the simulator had read and not answered when the SIGKILL was sent. */
  readonly simInFlight: number;
  /** Calls answered per second over the attempt (first answer to kill). */
  readonly callsPerSecond: number;
  /** The simulator's billed calls once the process was gone. */
  readonly billedAfter: number;
  /** Documents with a billed answer on the cost ledger after the kill (all runs). */
  readonly checkpointed: number;
  /** Calls billed by this attempt whose answers never reached the ledger: paid again later. */
  readonly paidTwice: number;
  /** `runs.calls_dispatched` of the killed run: calls counted (durably) before they were sent. */
  readonly dispatched: number;
  /**
   * Calls the client had in flight at the kill: dispatched, with no outcome on the ledger. A call
   * is counted while it waits for a free endpoint slot, so this includes up to the fan-out's few
   * spare workers that had not been sent yet (they show as `neverArrived`).
   */
  readonly clientInFlight: number;
  /** What `strata runs resume` reported as lost in flight for the killed run (its stderr). */
  readonly reportedLost: number;
  /** Requests of this attempt the simulator read, and those the client left before the answer. */
  readonly simRequests: number;
  readonly simAborted: number;
  /** Dispatched calls the simulator never read (dispatched minus requests read; never < 0). */
  readonly neverArrived: number;
}

/** What the experiment measured; the loop itself already asserted each kill's aftermath. */
export interface CrashResumeReport {
  readonly kills: ReadonlyArray<KillRecord>;
  readonly finalRunId: string;
  /** The inference asset's rows: after the crash loop, and from an uninterrupted run. */
  readonly rows: ReadonlyArray<Row>;
  readonly referenceRows: ReadonlyArray<Row>;
  /** Simulator bills per model, and the ledgers' billed totals per model. */
  readonly bill: Readonly<Record<string, SimModelBill>>;
  readonly referenceBill: Readonly<Record<string, SimModelBill>>;
  readonly ledger: Readonly<Record<string, SimModelBill>>;
  readonly referenceLedger: Readonly<Record<string, SimModelBill>>;
  /** Fewest and most tokens one document's call costs (from the uninterrupted run). */
  readonly perCall: { readonly min: SimModelBill; readonly max: SimModelBill };
  /** Succeeded `analyses` materializations over all runs. */
  readonly succeededMaterializations: number;
}

/** `raw/documents` (N generated documents) → `analyses` (one `ctx.infer` call per document). */
export function crashProject(simUrl: string, documents: number, maxConcurrency: number): string {
  return `import { asset, defineProject } from "strata";

export const documents = asset({
  key: "raw/documents",
  compute: async () =>
    Array.from({ length: ${documents} }, (_, i) => ({
      id: \`doc-\${String(i).padStart(5, "0")}\`,
      text: \`crash-resume document number \${i}\`,
    })),
});

export const analyses = asset({
  key: "analyses",
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "small",
      id: (doc) => doc.id,
      messages: (doc) => [{ role: "user", content: \`Analyze: \${doc.text}\` }],
      params: { max_tokens: 48, temperature: 0 },
      maxFailures: 0,
    }),
});

export default defineProject({
  assets: [documents, analyses],
  endpoints: { sim: { baseURL: ${JSON.stringify(simUrl)}, maxConcurrency: ${maxConcurrency} } },
  models: {
    small: {
      endpoint: "sim",
      name: ${JSON.stringify(CRASH_MODEL)},
      price: { inputPerMTok: 0.15, cachedInputPerMTok: 0.075, outputPerMTok: 0.6 },
    },
  },
});
`;
}

/** A project directory and its database (embedded, or a fresh one on TEST_DATABASE_URL). */
interface CrashProject {
  readonly fixture: ProjectFixture;
  start(args: ReadonlyArray<string>, timeoutMs?: number): ReturnType<typeof startCliProcess>;
  cli(args: ReadonlyArray<string>): Promise<CliResult>;
  /** Opens the database in this process; PGlite's only while no CLI runs. */
  withStore<T>(body: (store: Store) => Promise<T>): Promise<T>;
  dispose(): Promise<void>;
}

async function createCrashProject(backend: Backend, files: string): Promise<CrashProject> {
  const fixture = await createProjectFixture(files, { migratedDatabase: backend === "pglite" });
  const database = backend === "postgres" ? await createTestDatabase() : undefined;
  const args = (more: ReadonlyArray<string>) =>
    database === undefined ? [...more] : ["--database-url", database.url, ...more];
  const start = (more: ReadonlyArray<string>, timeoutMs = 120_000) =>
    startCliProcess(args(more), { cwd: fixture.dir, timeoutMs });
  return {
    fixture,
    start,
    cli: (more) => start(more).result,
    withStore: async (body) => {
      const store =
        database === undefined
          ? await openEmbeddedStore(embeddedDataDir(fixture.dir))
          : await openPostgresStore(database.url);
      try {
        return await body(store);
      } finally {
        await store.close();
      }
    },
    dispose: async () => {
      await database?.drop();
      await fixture.remove();
    },
  };
}

function parseJson<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${result.code}, signal ${result.signal}):\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

interface RunJson {
  readonly id: string;
  readonly status: string;
  readonly error: string | null;
}

/** Requests the simulator admitted and has not answered (nor seen abandoned) yet. */
function inFlight(sim: Simulator): number {
  const r = sim.ledger().requests;
  return (
    r.total -
    r.billed -
    r.errors -
    r.rateLimited -
    r.quotaExhausted -
    r.timedOut -
    r.malformed -
    r.badRequests -
    r.unauthorized -
    r.notFound -
    r.aborted
  );
}

/**
 * Waits until the simulator has billed `target` calls, then SIGKILLs the child at once.
 * Fails if the child ends first.
 */
async function killAt(
  sim: Simulator,
  child: ReturnType<typeof startCliProcess>,
  target: number,
): Promise<{ billedAtKill: number; inFlight: number; rate: number }> {
  const samples: Array<{ at: number; calls: number }> = [];
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setInterval(() => {
      const now = Date.now();
      const calls = sim.ledger().totals.calls;
      samples.push({ at: now, calls });
      if (calls < target) return;
      const flying = inFlight(sim);
      child.child.kill("SIGKILL");
      done = true;
      clearInterval(timer);
      const first = samples.find((s) => s.calls > samples[0]!.calls) ?? samples[0]!;
      const seconds = Math.max(POLL_MS, now - first.at) / 1000;
      resolve({
        billedAtKill: calls,
        inFlight: flying,
        rate: (calls - samples[0]!.calls) / seconds,
      });
    }, POLL_MS);
    child.result.then(
      (r) => {
        if (done) return;
        clearInterval(timer);
        reject(
          new Error(
            `the CLI ended before the kill at ${target} billed calls (exit ${r.code}):\n${r.stderr}`,
          ),
        );
      },
      (error: unknown) => {
        clearInterval(timer);
        reject(error);
      },
    );
  });
}

/** Documents whose billed answer is on the cost ledger, over all runs. */
async function checkpointedDocuments(store: Store): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(distinct document_id)::int as n from strata.inference_calls
     where asset_key = 'analyses' and status = 'succeeded' and not cache_hit`.execute(store.db);
  return rows[0]?.n ?? 0;
}

/** `runs.calls_dispatched` of a run. */
async function dispatchedCalls(store: Store, runId: string): Promise<number> {
  const row = await store.db
    .selectFrom("strata.runs")
    .select(sql<number>`calls_dispatched::int`.as("n"))
    .where("id", "=", runId)
    .executeTakeFirstOrThrow();
  return row.n;
}

/** The lost count `strata runs resume` printed on stderr (0 when it printed none). */
export function reportedLostInFlight(stderr: string, runId: string): number {
  const match = new RegExp(`run ${runId} had (\\d+) call\\(s\\) in flight when it stopped`).exec(
    stderr,
  );
  return match === null ? 0 : Number(match[1]);
}

/** Billed calls and tokens on the ledger per provider model. */
async function ledgerBill(store: Store): Promise<Record<string, SimModelBill>> {
  const { rows } = await sql<{
    model: string;
    calls: number;
    prompt: number;
    cached: number;
    completion: number;
  }>`
    select provider_model as model,
           (count(*) filter (where status = 'succeeded' and not cache_hit))::int as calls,
           coalesce(sum(prompt_tokens), 0)::int as prompt,
           coalesce(sum(cached_tokens), 0)::int as cached,
           coalesce(sum(completion_tokens), 0)::int as completion
      from strata.inference_calls group by provider_model`.execute(store.db);
  return Object.fromEntries(
    rows.map((r) => [
      r.model,
      {
        calls: r.calls,
        promptTokens: r.prompt,
        cachedTokens: r.cached,
        completionTokens: r.completion,
      },
    ]),
  );
}

/** The fewest and most tokens one billed call cost. */
async function perCallRange(store: Store): Promise<CrashResumeReport["perCall"]> {
  const { rows } = await sql<{
    pmin: number;
    pmax: number;
    cmin: number;
    cmax: number;
    kmin: number;
    kmax: number;
  }>`
    select min(prompt_tokens)::int as pmin, max(prompt_tokens)::int as pmax,
           min(cached_tokens)::int as cmin, max(cached_tokens)::int as cmax,
           min(completion_tokens)::int as kmin, max(completion_tokens)::int as kmax
      from strata.inference_calls where status = 'succeeded' and not cache_hit`.execute(store.db);
  const r = rows[0]!;
  return {
    min: { calls: 1, promptTokens: r.pmin, cachedTokens: r.cmin, completionTokens: r.kmin },
    max: { calls: 1, promptTokens: r.pmax, cachedTokens: r.cmax, completionTokens: r.kmax },
  };
}

/**
 * The latest succeeded `analyses` output (its file recorded under the project's storage root),
 * and how many succeeded materializations it has.
 */
async function latestAnalyses(
  store: Store,
  projectDir: string,
): Promise<{ rows: Row[]; succeeded: number }> {
  const found = await store.db
    .selectFrom("strata.materializations")
    .select(["storage_path"])
    .where("asset_key", "=", "analyses")
    .where("status", "=", "succeeded")
    .orderBy("finished_at", "desc")
    .execute();
  const path = found[0]?.storage_path;
  if (path === undefined || path === null) throw new Error("analyses never succeeded");
  const file = storedValuePath(storageRootOf(projectDir), path);
  return { rows: tableToRows(await readArrowFile(file)), succeeded: found.length };
}

/** The same project, run once without interruption: what the crash loop must end with. */
async function uninterruptedRun(config: CrashResumeConfig) {
  const sim = await startSimulator({
    port: 0,
    seed: config.seed,
    latencyMs: config.latencyMs,
    jitterMs: config.jitterMs,
  });
  const p = await createCrashProject(
    config.backend,
    crashProject(sim.url, config.documents, config.maxConcurrency),
  );
  try {
    const result = await p.cli(["materialize", "--select", "*", "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(parseJson<{ status: string }>(result).status).toBe("succeeded");
    const bill = sim.ledger().models;
    return await p.withStore(async (store) => ({
      rows: (await latestAnalyses(store, p.fixture.dir)).rows,
      bill,
      ledger: await ledgerBill(store),
      perCall: await perCallRange(store),
    }));
  } finally {
    await p.dispose();
    await sim.close();
  }
}

/**
 * Runs the crash loop: `config.kills` times, start `strata materialize` (then `strata runs resume`
 * of the run just killed) and SIGKILL it when the simulator has billed a seeded random share of
 * the documents; after each kill `strata runs --json` must open the database and show the run
 * reaped as `failed`. Then resumes to the end and gathers the outputs and bills, alongside an
 * uninterrupted run of the same project on a simulator with the same seed.
 */
export async function runCrashResume(config: CrashResumeConfig): Promise<CrashResumeReport> {
  const reference = uninterruptedRun(config);
  // a rejected reference must not go unhandled while the loop runs
  reference.catch(() => {});
  const random = new SeededRandom(config.seed);
  // where, as shares of the documents, the kills fall: spread over the run, in order
  const shares = Array.from({ length: config.kills }, () => 0.05 + 0.9 * random.next()).sort(
    (a, b) => a - b,
  );
  const sim = await startSimulator({
    port: 0,
    seed: config.seed,
    latencyMs: config.latencyMs,
    jitterMs: config.jitterMs,
  });
  const p = await createCrashProject(
    config.backend,
    crashProject(sim.url, config.documents, config.maxConcurrency),
  );
  try {
    const measured: Array<Omit<KillRecord, "reportedLost">> = [];
    /** What each resume printed about the run it resumed, by that run's kill index. */
    const reported: number[] = [];
    let killedRunId: string | undefined;
    let checkpointed = 0;
    let lostSoFar = 0;
    for (const [i, share] of shares.entries()) {
      // This attempt calls the endpoint once for every document not yet on the ledger; kill it
      // once it has answered enough to reach its share (at least a few calls, never all).
      const remaining = config.documents - checkpointed;
      const wanted = Math.round(share * config.documents) - checkpointed;
      const newCalls = Math.min(Math.max(wanted, 8), remaining - 1);
      const billedAtStart = sim.ledger().totals.calls;
      const requestsAtStart = sim.ledger().requests;
      const target = billedAtStart + newCalls;
      const child = p.start(
        killedRunId === undefined
          ? ["materialize", "--select", "*", "--json"]
          : ["runs", "resume", killedRunId, "--json"],
      );
      const moment = await killAt(sim, child, target);
      const killed = await child.result;
      expect(killed.signal, killed.stderr).toBe("SIGKILL");
      if (killedRunId !== undefined)
        reported.push(reportedLostInFlight(killed.stderr, killedRunId));

      // The next command opens the database cleanly and reaps the killed run as failed.
      const listed = await p.cli(["runs", "--json"]);
      expect(listed.code, listed.stderr).toBe(0);
      const runs = parseJson<RunJson[]>(listed);
      expect(runs).toHaveLength(i + 1);
      const latest = runs[0]!;
      expect(latest.status, `run ${latest.id} after kill ${i + 1}`).toBe("failed");
      expect(latest.error).toContain(`strata runs resume ${latest.id}`);
      expect(runs.every((r) => r.status === "failed")).toBe(true);
      killedRunId = latest.id;

      const ledgerState = await p.withStore(async (store) => ({
        checkpointed: await checkpointedDocuments(store),
        dispatched: await dispatchedCalls(store, latest.id),
        clientInFlight: await callsLostInFlight(store.db, latest.id),
      }));
      checkpointed = ledgerState.checkpointed;
      // the CLI is gone and a command has run since: the simulator has seen every socket close
      const { totals, requests } = sim.ledger();
      const billedAfter = totals.calls;
      const paidTwice = billedAfter - checkpointed - lostSoFar;
      lostSoFar += paidTwice;
      const simRequests = requests.total - requestsAtStart.total;
      measured.push({
        kill: i + 1,
        runId: latest.id,
        billedAtStart,
        target,
        billedAtKill: moment.billedAtKill,
        simInFlight: moment.inFlight,
        callsPerSecond: Math.round(moment.rate),
        billedAfter,
        checkpointed,
        paidTwice,
        dispatched: ledgerState.dispatched,
        clientInFlight: ledgerState.clientInFlight,
        simRequests,
        simAborted: requests.aborted - requestsAtStart.aborted,
        neverArrived: ledgerState.dispatched - simRequests,
      });
    }

    const last = await p.start(["runs", "resume", killedRunId!, "--json"]).result;
    expect(last.code, last.stderr).toBe(0);
    reported.push(reportedLostInFlight(last.stderr, killedRunId!));
    const finished = parseJson<{ runId: string; status: string }>(last);
    expect(finished.status).toBe("succeeded");
    const kills = measured.map((k, i) => ({ ...k, reportedLost: reported[i] ?? 0 }));

    const bill = sim.ledger().models;
    const after = await p.withStore(async (store) => ({
      runs: await store.db
        .selectFrom("strata.runs")
        .select(["id", "status", "resumed_from"])
        .orderBy("started_at", "desc")
        .execute(),
      analyses: await latestAnalyses(store, p.fixture.dir),
      ledger: await ledgerBill(store),
    }));
    // one chain of runs: each resumed the one before, all failed but the last
    expect(after.runs).toHaveLength(config.kills + 1);
    expect(after.runs[0]).toMatchObject({ id: finished.runId, status: "succeeded" });
    for (const [i, run] of after.runs.entries()) {
      if (i > 0) expect(run.status).toBe("failed");
      expect(run.resumed_from).toBe(after.runs[i + 1]?.id ?? null);
    }
    const ref = await reference;
    return {
      kills,
      finalRunId: finished.runId,
      rows: after.analyses.rows,
      referenceRows: ref.rows,
      bill,
      referenceBill: ref.bill,
      ledger: after.ledger,
      referenceLedger: ref.ledger,
      perCall: ref.perCall,
      succeededMaterializations: after.analyses.succeeded,
    };
  } finally {
    await p.dispose();
    await sim.close();
    await reference.catch(() => {});
  }
}

/** The per-kill table and totals, for the suite's log. */
export function formatCrashReport(config: CrashResumeConfig, report: CrashResumeReport): string {
  const columns: ReadonlyArray<[string, (k: KillRecord) => number]> = [
    ["kill", (k) => k.kill],
    ["billed@start", (k) => k.billedAtStart],
    ["billed@kill", (k) => k.billedAtKill],
    ["calls/s", (k) => k.callsPerSecond],
    ["sim in flight", (k) => k.simInFlight],
    ["dispatched", (k) => k.dispatched],
    ["client in flight", (k) => k.clientInFlight],
    ["resume reported lost", (k) => k.reportedLost],
    ["paid twice", (k) => k.paidTwice],
    ["sim aborted", (k) => k.simAborted],
    ["never arrived", (k) => k.neverArrived],
    ["docs on ledger", (k) => k.checkpointed],
  ];
  const sum = (f: (k: KillRecord) => number) => report.kills.reduce((s, k) => s + f(k), 0);
  const billed = report.bill[CRASH_MODEL]?.calls ?? 0;
  const list = (f: (k: KillRecord) => number) => report.kills.map(f).join("/");
  return [
    `crash/resume on ${config.backend}: ${config.documents} documents, ${report.kills.length} SIGKILLs survived, maxConcurrency ${config.maxConcurrency}, latency ${config.latencyMs}+${config.jitterMs}ms jitter, seed ${config.seed}`,
    columns.map(([name]) => name).join(" | "),
    ...report.kills.map((k) => columns.map(([, f]) => f(k)).join(" | ")),
    `per kill: client in flight ${list((k) => k.clientInFlight)}; resume reported lost ${list((k) => k.reportedLost)}; paid twice ${list((k) => k.paidTwice)}; sim in flight ${list((k) => k.simInFlight)}`,
    `billed ${billed} calls for ${config.documents} documents: paid twice ${billed - config.documents} = ${sum((k) => k.paidTwice)}, ` +
      `against ${sum((k) => k.clientInFlight)} calls in flight at the kills as the client saw them (reported lost by resume: ${sum((k) => k.reportedLost)}; ` +
      `the rest were left by the client before the simulator answered: ${sum((k) => k.simAborted)}, or never reached it: ${sum((k) => k.neverArrived)})`,
  ].join("\n");
}

/**
 * What a user relies on after the loop: the outputs of an uninterrupted run, every document
 * answered and paid for exactly once on the ledger, and, at each kill, the simulator billing
 * twice no more than the calls the client had in flight, each of which resume reported as lost.
 */
export function expectCrashReport(config: CrashResumeConfig, report: CrashResumeReport): void {
  const { documents } = config;
  expect(report.kills).toHaveLength(config.kills);
  expect(report.succeededMaterializations).toBe(1);

  // the outputs equal those of the uninterrupted run
  const view = (rows: ReadonlyArray<Row>) =>
    rows.map((r) => ({ id: r.id, output: r.output, status: r.status, model: r.model }));
  expect(report.rows).toHaveLength(documents);
  expect(report.rows.filter((r) => r.status !== "succeeded")).toEqual([]);
  expect(view(report.rows)).toEqual(view(report.referenceRows));

  // the uninterrupted run's ledger is its bill, exactly
  expect(report.referenceLedger).toEqual(report.referenceBill);
  expect(report.referenceBill[CRASH_MODEL]?.calls).toBe(documents);
  // after the crashes the ledger holds one billed call per document with the same tokens
  expect(report.ledger).toEqual(report.referenceLedger);

  // every billed call is on the ledger, but for the calls paid twice at the kills
  const bill = report.bill[CRASH_MODEL]!;
  const ledger = report.ledger[CRASH_MODEL]!;
  const paidTwice = report.kills.reduce((s, k) => s + k.paidTwice, 0);
  expect(Object.keys(report.bill)).toEqual([CRASH_MODEL]);
  expect(bill.calls - ledger.calls).toBe(paidTwice);
  expect(bill.calls - documents).toBe(paidTwice);
  for (const tokens of ["promptTokens", "cachedTokens", "completionTokens"] as const) {
    const unrecorded = bill[tokens] - ledger[tokens];
    expect(unrecorded, tokens).toBeGreaterThanOrEqual(paidTwice * report.perCall.min[tokens]);
    expect(unrecorded, tokens).toBeLessThanOrEqual(paidTwice * report.perCall.max[tokens]);
  }
  for (const k of report.kills) {
    const at = `kill ${k.kill}`;
    expect(k.paidTwice, at).toBeGreaterThanOrEqual(0);
    // every request the simulator read had been counted as dispatched before it was sent
    expect(k.neverArrived, at).toBeGreaterThanOrEqual(0);
    // the only loss: calls in flight as the client saw them (dispatched, no outcome recorded)
    expect(k.paidTwice, at).toBeLessThanOrEqual(k.clientInFlight);
    // and resume says how many those were
    expect(k.reportedLost, at).toBe(k.clientInFlight);
  }
}
