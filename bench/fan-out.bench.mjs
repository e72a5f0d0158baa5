// The fan-out benchmark: how close strata's inference step comes to the bare `openai` loop a user
// would write by hand, while writing every call to the cost ledger.
//
// One run on this machine: the simulator (`strata sim --latency-ms 200`) runs in its own process,
// so its CPU is not billed to the client; then, alternately (BENCH_FANOUT_ROUNDS rounds, default
// 2), three client processes send the same 10,000 documents (a few hundred characters each,
// max_tokens 16) to it with at most 200 calls in flight:
//   - bare: `openai` chat.completions.create in 200 workers, recording nothing;
//   - strata on Postgres: a project with a source asset (the documents, materialized first in its
//     own process) and an inference asset calling ctx.infer on an endpoint with maxConcurrency
//     200; the inference step is timed from step_started to step_finished, in a fresh database
//     (so the ledger's cache answers nothing);
//   - strata on PGlite: the same on the embedded database in a temp dir.
// Ideal wall time is 10,000 × 0.2 s / 200 = 10 s. Checked after each run: the ledger has one
// succeeded row per document, and its token totals equal the simulator's own bill (GET /ledger).
//
// The memory case (opt-in, BENCH_FANOUT_MEMORY=1, minutes on 2 busy cores; BENCH_FANOUT_MEMORY_N
// changes its size): 100,000 documents of about 1 KB through one
// step, simulator latency 0, maxConcurrency 256, once with the ledger on Postgres and once on the
// embedded database in a directory (BENCH_FANOUT_MEMORY_BACKENDS=postgres,pglite), each in a
// process of its own; peak RSS of the strata process (the source is materialized by another
// process first). BENCH_FANOUT_ROUNDS=0 skips the 10,000-document throughput case.
//
// BENCH_FANOUT_KINDS=bare,postgres,pglite chooses the clients (all three by default).
// BENCH_FANOUT_CPU_PROF=DIR writes a V8 CPU profile of each strata inference process to DIR
// (summarize with `node bench/lib/cpu-profile-summary.mjs DIR/*.cpuprofile`).

import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { sql } from "kysely";
import { emitResult, runNodeChild } from "./lib/bench-child.mjs";
import { createBenchDatabase, createTempDir } from "./lib/bench-database.mjs";
import { seededRandom } from "./lib/synthetic-project.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const DIST = join(ROOT, "dist");
const CLI = join(DIST, "cli", "main.js");
const SELF = fileURLToPath(import.meta.url);

const MODEL_NAME = "strata-sim-small";
const MAX_TOKENS = 16;
const PRICE = { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 };

const FAN_OUT = {
  documents: Number(process.env.BENCH_FANOUT_N ?? 10_000),
  docChars: 400,
  latencyMs: 200,
  maxConcurrency: 200,
};
const MEMORY = {
  documents: Number(process.env.BENCH_FANOUT_MEMORY_N ?? 100_000),
  docChars: 1_000,
  latencyMs: 0,
  maxConcurrency: 256,
};
/** strata must reach this share of the bare loop's throughput. */
const GOAL_SHARE_OF_BARE = 0.95;
const GIB_MIB = 1024;
const MIB = 1024 * 1024;

const DAGSTER =
  "Dagster runs one step per document in a fan-out; its tracker reports 5,600 dynamic outputs taking about 30 minutes (dagster#11475), ~320 ms per document";

async function main() {
  const rounds = Number(process.env.BENCH_FANOUT_ROUNDS ?? 2);
  const { cpus, loadavg } = await import("node:os");
  const cores = cpus().length;
  const loadBefore = loadavg()[0];
  const notes = [
    `the simulator runs in its own process; this machine has ${cores} cores in all, shared by the simulator, the client process and (for the Postgres runs) the Postgres server`,
  ];
  const cases = [];

  // --- 10,000 documents, 200 ms, 200 in flight ---
  if (rounds > 0) {
    const fan = FAN_OUT;
    const idealMs = (fan.documents * fan.latencyMs) / fan.maxConcurrency;
    const runs = { bare: [], postgres: [], pglite: [] };
    const sim = await startSimulatorProcess(fan.latencyMs);
    try {
      for (let round = 1; round <= rounds; round++) {
        for (const kind of (process.env.BENCH_FANOUT_KINDS ?? "bare,postgres,pglite").split(",")) {
          const run =
            kind === "bare"
              ? await measured(sim, () =>
                  runNodeChild(SELF, [
                    "--worker",
                    JSON.stringify({ kind: "bare", url: sim.url, ...fan }),
                  ]),
                )
              : await strataRun(sim, kind, fan);
          verifyAgainstSim(run, fan.documents, `${kind} round ${round}`);
          runs[kind].push(run);
          process.stderr.write(
            `fan-out round ${round} ${kind}: ${(run.result.wallMs / 1000).toFixed(2)} s (ideal ${(idealMs / 1000).toFixed(1)} s), CPU ${(run.result.cpuUs / fan.documents).toFixed(0)} µs/doc, sim CPU ${(run.simCpuUs / fan.documents).toFixed(0)} µs/req, peak RSS ${(run.result.maxRssKiB / 1024).toFixed(0)} MiB\n`,
          );
        }
      }
    } finally {
      await sim.stop();
    }
    const best = (list) => list.reduce((a, b) => (b.result.wallMs < a.result.wallMs ? b : a));
    const bare = best(runs.bare);
    cases.push(fanOutCase("bare openai loop", runs.bare, bare, idealMs, fan));
    for (const [kind, label] of [
      ["postgres", "strata Postgres"],
      ["pglite", "strata PGlite"],
    ]) {
      const c = fanOutCase(label, runs[kind], bare, idealMs, fan);
      c.goals = [
        {
          name: `inference step wall ÷ bare loop wall (throughput ≥ ${GOAL_SHARE_OF_BARE} × bare ⇔ ≤ ${(1 / GOAL_SHARE_OF_BARE).toFixed(3)})`,
          value: best(runs[kind]).result.stepMs / bare.result.wallMs,
          limit: 1 / GOAL_SHARE_OF_BARE,
          unit: "×",
        },
      ];
      cases.push(c);
    }
    notes.push(
      `${fan.documents.toLocaleString("en-US")} documents of ~${fan.docChars} characters, max_tokens ${MAX_TOKENS}, simulator latency ${fan.latencyMs} ms fixed, ${fan.maxConcurrency} in flight: ideal ${(idealMs / 1000).toFixed(1)} s; best of ${rounds} alternating rounds per client (each round: bare, strata Postgres, strata PGlite)`,
      "strata wall = the inference step from step_started to step_finished (inputs read, fan-out, ledger flush, Arrow file, records); overhead µs/doc = (strata step wall − bare wall) / documents",
      "every run verified: ledger outcome rows (status ≠ 'dispatched') = documents, all succeeded, and ledger token totals = the simulator's /ledger delta",
      DAGSTER,
    );
  }

  // --- memory: 100,000 documents of ~1 KB through one step, on each backend ---
  if (process.env.BENCH_FANOUT_MEMORY === "1") {
    const mem = MEMORY;
    const backends = (process.env.BENCH_FANOUT_MEMORY_BACKENDS ?? "postgres,pglite").split(",");
    const memSim = await startSimulatorProcess(mem.latencyMs);
    try {
      for (const backend of backends) {
        cases.push(await memoryCase(memSim, backend, mem));
      }
    } finally {
      await memSim.stop();
    }
    notes.push(
      `memory case: ${mem.documents.toLocaleString("en-US")} documents of ~${mem.docChars} characters, simulator latency ${mem.latencyMs} ms, ${mem.maxConcurrency} in flight; each backend in a process of its own (PGlite: a directory store, as a project without DATABASE_URL gets it); "sampled peak" figures come from process.memoryUsage() every 50 ms`,
    );
  }
  if (process.env.BENCH_FANOUT_MEMORY !== "1") {
    notes.push("the 100,000 × 1 KB memory case is opt-in: BENCH_FANOUT_MEMORY=1");
  }
  notes.push(
    `load average (1 min) of the machine: ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after; other processes compete for the cores`,
  );
  return { name: "fan-out", cases, notes };
}

/** One column of the fan-out table: the best run's figures plus every run's wall time. */
function fanOutCase(name, list, bare, idealMs, fan) {
  const n = fan.documents;
  const best = list.reduce((a, b) => (b.result.wallMs < a.result.wallMs ? b : a));
  const r = best.result;
  const wallMs = r.stepMs ?? r.wallMs;
  const metrics = {
    documents: n,
    "wall s (best)": wallMs / 1000,
  };
  list.forEach((run, i) => {
    metrics[`wall s round ${i + 1}`] = (run.result.stepMs ?? run.result.wallMs) / 1000;
  });
  Object.assign(metrics, {
    "ideal s": idealMs / 1000,
    "ratio to ideal (ideal ÷ wall)": idealMs / wallMs,
    "share of bare loop throughput": bare.result.wallMs / wallMs,
    "overhead vs bare µs/doc": ((wallMs - bare.result.wallMs) * 1000) / n,
    "client CPU µs/doc": r.cpuUs / n,
    "client CPU over bare µs/doc": (r.cpuUs - bare.result.cpuUs) / n,
    "client CPU share of wall %": (r.cpuUs / 1000 / wallMs) * 100,
    "simulator CPU µs/request": best.simCpuUs / n,
    "peak RSS MiB": r.maxRssKiB / 1024,
  });
  if (r.stepMs !== undefined) {
    Object.assign(metrics, {
      "materialize() wall s": r.wallMs / 1000,
      "fan-out (ctx.infer) s": r.inferMs / 1000,
      "store open (not counted) ms": r.openMs,
      "ledger rows (verified)": r.ledger.rows,
      "ledger 'dispatched' rows": r.ledger.dispatched ?? 0,
    });
  }
  return { name, metrics };
}

/** The memory case on one backend: a fresh store, the inference step's peak RSS against 1 GiB. */
async function memoryCase(sim, backend, mem) {
  const label = backend === "postgres" ? "Postgres" : "PGlite";
  const run = await strataRun(sim, backend, mem);
  verifyAgainstSim(run, mem.documents, `memory case ${label}`);
  const r = run.result;
  process.stderr.write(
    `fan-out memory ${label}: ${mem.documents} docs in ${(r.stepMs / 1000).toFixed(1)} s, peak RSS ${(r.maxRssKiB / 1024).toFixed(0)} MiB\n`,
  );
  return {
    name: `${mem.documents / 1000}k × 1 KB ${label}`,
    metrics: {
      documents: mem.documents,
      "document characters": mem.docChars,
      "max in flight": mem.maxConcurrency,
      "simulator latency ms": mem.latencyMs,
      "inference step wall s": r.stepMs / 1000,
      "materialize() wall s": r.wallMs / 1000,
      "documents/s": mem.documents / (r.stepMs / 1000),
      "strata CPU µs/doc": r.cpuUs / mem.documents,
      "simulator CPU µs/request": run.simCpuUs / mem.documents,
      "peak RSS of the strata process MiB": r.maxRssKiB / 1024,
      "sampled peak JS heap used MiB": r.memory.heapUsed / MIB,
      "sampled peak JS heap total MiB": r.memory.heapTotal / MIB,
      "sampled peak external MiB": r.memory.external / MIB,
      "sampled peak array buffers MiB": r.memory.arrayBuffers / MIB,
      "source materialization (other process) s": run.sourceMs / 1000,
      "ledger rows (verified)": r.ledger.rows,
    },
    goals: [
      {
        name: `peak RSS with ${mem.documents.toLocaleString("en-US")} documents of ~1 KB in one step (${label})`,
        value: r.maxRssKiB / 1024,
        limit: GIB_MIB,
        unit: "MiB",
      },
    ],
  };
}

/** Runs `fn` (a client process) and measures the simulator's bill and CPU around it. */
async function measured(sim, fn) {
  const before = await sim.ledger();
  const cpuBefore = processCpuUs(sim.pid);
  const result = await fn();
  const simCpuUs = processCpuUs(sim.pid) - cpuBefore;
  const after = await sim.ledger();
  const bill = {
    calls: after.totals.calls - before.totals.calls,
    promptTokens: after.totals.promptTokens - before.totals.promptTokens,
    cachedTokens: after.totals.cachedTokens - before.totals.cachedTokens,
    completionTokens: after.totals.completionTokens - before.totals.completionTokens,
  };
  return { result, bill, simCpuUs };
}

/** strata on `backend`: the source in one process, then the timed inference in another. */
async function strataRun(sim, backend, fan) {
  const dir = createTempDir("strata-bench-fanout-");
  let database;
  try {
    const job = { backend, url: sim.url, storageDir: join(dir.dir, "storage"), ...fan };
    if (backend === "postgres") {
      database = await createBenchDatabase();
      job.databaseUrl = database.url;
    } else {
      job.dataDir = join(dir.dir, ".strata", "db");
    }
    const source = await runNodeChild(SELF, [
      "--worker",
      JSON.stringify({ ...job, kind: "source" }),
    ]);
    const nodeArgs = ["--expose-gc"];
    const profileDir = process.env.BENCH_FANOUT_CPU_PROF;
    if (profileDir) {
      mkdirSync(profileDir, { recursive: true });
      const name = `fan-out-${backend}-${fan.documents}-${Date.now()}.cpuprofile`;
      nodeArgs.push("--cpu-prof", "--cpu-prof-dir", profileDir, "--cpu-prof-name", name);
    }
    const run = await measured(sim, () =>
      runNodeChild(SELF, ["--worker", JSON.stringify({ ...job, kind: "infer" })], nodeArgs),
    );
    return { ...run, sourceMs: source.ms };
  } finally {
    await database?.drop();
    dir.remove();
  }
}

/** The ledger (or the bare loop's own sums) must match the simulator's bill exactly. */
function verifyAgainstSim(run, documents, label) {
  const seen = run.result.ledger;
  const bill = run.bill;
  const problems = [];
  if (seen.rows !== documents) problems.push(`${seen.rows} rows for ${documents} documents`);
  if (seen.succeeded !== documents) problems.push(`${seen.succeeded} succeeded`);
  for (const k of ["calls", "promptTokens", "cachedTokens", "completionTokens"]) {
    if (seen[k] !== bill[k])
      problems.push(`${k}: ${seen[k]} recorded, simulator billed ${bill[k]}`);
  }
  if (problems.length > 0) throw new Error(`${label}: ${problems.join("; ")}`);
}

// ------------------------------------------------------------------------------------------
// The simulator process

/** `node dist/cli/main.js sim --port 0 --json --latency-ms N`, its URL read from stdout. */
async function startSimulatorProcess(latencyMs) {
  const child = spawn(
    process.execPath,
    [
      CLI,
      "sim",
      "--port",
      "0",
      "--json",
      "--latency-ms",
      String(latencyMs),
      "--per-token-latency-ms",
      "0",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const info = await new Promise((resolveInfo, reject) => {
    let out = "";
    child.stdout.setEncoding("utf8");
    const onData = (chunk) => {
      out += chunk;
      const newline = out.indexOf("\n");
      if (newline === -1) return;
      child.stdout.off("data", onData);
      child.stdout.resume();
      try {
        resolveInfo(JSON.parse(out.slice(0, newline)));
      } catch (error) {
        reject(error);
      }
    };
    child.stdout.on("data", onData);
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`strata sim exited with ${code}`)));
  });
  const origin = new URL(info.url).origin;
  return {
    url: info.url,
    pid: child.pid,
    ledger: async () => (await fetch(`${origin}/ledger`)).json(),
    stop: () =>
      new Promise((resolveStop) => {
        if (child.exitCode !== null) return resolveStop();
        child.once("exit", () => resolveStop());
        child.kill("SIGTERM");
      }),
  };
}

/** User + system CPU time of a process so far, in µs (Linux /proc; 100 ticks per second). */
function processCpuUs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return Number.NaN;
  }
}

// ------------------------------------------------------------------------------------------
// Workers (each in its own process)

const WORDS =
  "the of and to in is that for on with as by at from this be are was it an or which data model asset pipeline token cost ledger document analysis report result value review source summary quarterly revenue customer support contract clause risk".split(
    " ",
  );

/** Document `i`: `doc-<i>` and about `chars` characters of seeded text, unique per document. */
function documentOf(i, chars) {
  const rng = seededRandom(i + 1);
  let text = `Document ${i}.`;
  while (text.length < chars) text += ` ${WORDS[Math.floor(rng() * WORDS.length)]}`;
  return { id: `doc-${i}`, text };
}

const messagesOf = (doc) => [{ role: "user", content: `Summarize in one line: ${doc.text}` }];

/** The loop a user writes by hand: 200 workers over the documents, nothing recorded. */
async function bareLoop(job) {
  const { default: OpenAI } = await import("openai");
  const docs = Array.from({ length: job.documents }, (_, i) => documentOf(i, job.docChars));
  const client = new OpenAI({ baseURL: job.url, apiKey: "sim", maxRetries: 0 });
  const sums = {
    rows: 0,
    succeeded: 0,
    calls: 0,
    promptTokens: 0,
    cachedTokens: 0,
    completionTokens: 0,
  };
  let next = 0;
  const worker = async () => {
    while (next < docs.length) {
      const doc = docs[next++];
      const completion = await client.chat.completions.create({
        model: MODEL_NAME,
        messages: messagesOf(doc),
        max_tokens: MAX_TOKENS,
        temperature: 0,
      });
      // only what verification needs: the tokens billed
      sums.rows += 1;
      sums.calls += 1;
      if (completion.choices[0]?.message?.content) sums.succeeded += 1;
      sums.promptTokens += completion.usage.prompt_tokens;
      sums.cachedTokens += completion.usage.prompt_tokens_details?.cached_tokens ?? 0;
      sums.completionTokens += completion.usage.completion_tokens;
    }
  };
  globalThis.gc?.();
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: job.maxConcurrency }, worker));
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuUs: used.user + used.system, ledger: sums };
}

/** The project both strata workers load: the documents and the inference asset over them. */
async function loadStrata(job) {
  const strata = await import(pathToFileURL(join(DIST, "index.js")).href);
  const modules = {
    strata,
    materialize: await import(pathToFileURL(join(DIST, "materialize/execute-run.js")).href),
    plan: await import(pathToFileURL(join(DIST, "materialize/materialization-plan.js")).href),
    runtime: await import(pathToFileURL(join(DIST, "inference/inference-runtime.js")).href),
    fanOut: await import(pathToFileURL(join(DIST, "inference/fan-out.js")).href),
    stores: await import(pathToFileURL(join(DIST, "store/store.js")).href),
  };
  const documents = strata.asset({
    key: "bench/documents",
    compute: async () =>
      Array.from({ length: job.documents }, (_, i) => documentOf(i, job.docChars)),
  });
  const analyses = strata.asset({
    key: "bench/analyses",
    deps: { documents },
    compute: async (ctx, { documents: docs }) =>
      ctx.infer(docs, {
        model: "sim",
        id: (doc) => doc.id,
        messages: messagesOf,
        params: { max_tokens: MAX_TOKENS, temperature: 0 },
      }),
  });
  const definition = strata.defineProject({
    name: "bench-fan-out",
    assets: [documents, analyses],
    endpoints: { sim: { baseURL: job.url, maxConcurrency: job.maxConcurrency } },
    models: { sim: { endpoint: "sim", name: MODEL_NAME, price: PRICE } },
  });
  strata.validateProject(definition);
  const project = { definition, graph: strata.AssetGraph.fromAssets(definition.assets) };
  const start = performance.now();
  const store =
    job.backend === "postgres"
      ? await modules.stores.openPostgresStore(job.databaseUrl)
      : await modules.stores.openEmbeddedStore(job.dataDir);
  await strata.migrate(store.db);
  return { ...modules, project, store, openMs: performance.now() - start };
}

/** Materializes the documents (not timed in the goals). */
async function materializeSource(job) {
  const s = await loadStrata(job);
  try {
    const start = performance.now();
    const result = await s.materialize.executeRun({
      project: s.project,
      store: s.store,
      plan: s.plan.planMaterialization(s.project.graph, { selection: "key:bench/documents" }),
      storageRoot: job.storageDir,
    });
    if (result.status !== "succeeded")
      throw new Error(`source run ${result.status}: ${result.error}`);
    return { ms: performance.now() - start };
  } finally {
    await s.store.close();
  }
}

/** Materializes the inference asset alone, timing its step; returns the ledger's totals. */
async function materializeInference(job) {
  const s = await loadStrata(job);
  try {
    const runtime = new s.runtime.InferenceRuntime({
      project: s.project.definition,
      db: s.store.db,
      env: process.env,
      maxCostUsd: null,
      ledger: { relaxedDispatchCommit: s.stores.allowsRelaxedCommits(s.store) },
    });
    const plan = s.plan.planMaterialization(s.project.graph, { selection: "key:bench/analyses" });
    let stepStart = 0;
    let stepEnd = 0;
    let inferStart = 0;
    let inferEnd = 0;
    globalThis.gc?.();
    const sampler = sampleMemory();
    const cpu = process.cpuUsage();
    const start = performance.now();
    const result = await s.materialize.executeRun({
      project: s.project,
      store: s.store,
      plan,
      storageRoot: job.storageDir,
      inference: (step) => {
        const inner = s.fanOut.stepInference(runtime, step);
        return {
          infer: async (items, spec) => {
            inferStart = performance.now();
            try {
              return await inner.infer(items, spec);
            } finally {
              inferEnd = performance.now();
            }
          },
        };
      },
      onEvent: (event) => {
        if (event.type === "step_started") stepStart = performance.now();
        if (event.type === "step_finished") stepEnd = performance.now();
      },
    });
    const wallMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    const memory = sampler.stop();
    await runtime.close();
    if (result.status !== "succeeded")
      throw new Error(`inference run ${result.status}: ${result.error}`);
    const totals = await sql`
      select (count(*) filter (where status <> 'dispatched'))::int as rows,
             (count(*) filter (where status = 'dispatched'))::int as dispatched,
             (count(*) filter (where status = 'succeeded' and not cache_hit))::int as succeeded,
             (count(*) filter (where not cache_hit and status <> 'dispatched'))::int as calls,
             coalesce(sum(prompt_tokens), 0)::bigint as "promptTokens",
             coalesce(sum(cached_tokens), 0)::bigint as "cachedTokens",
             coalesce(sum(completion_tokens), 0)::bigint as "completionTokens",
             coalesce(sum(cost_usd), 0)::text as "costUsd"
        from strata.inference_calls where run_id = ${result.runId}`.execute(s.store.db);
    const ledger = totals.rows[0];
    const step = result.steps[0];
    if (step.rows !== job.documents || step.promptTokens !== ledger.promptTokens) {
      throw new Error(`the step recorded ${step.rows} rows and ${step.promptTokens} prompt tokens`);
    }
    return {
      wallMs,
      stepMs: stepEnd - stepStart,
      inferMs: inferEnd - inferStart,
      cpuUs: used.user + used.system,
      openMs: s.openMs,
      memory,
      ledger,
    };
  } finally {
    await s.store.close();
  }
}

/** Samples process.memoryUsage() every 50 ms; `stop()` returns the peak of each field. */
function sampleMemory() {
  const peak = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  const sample = () => {
    const now = process.memoryUsage();
    for (const k of Object.keys(peak)) peak[k] = Math.max(peak[k], now[k]);
  };
  sample();
  const timer = setInterval(sample, 50);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return peak;
    },
  };
}

// The entry point, last: every constant above is initialized by now.
if (process.argv[2] === "--worker") {
  const job = JSON.parse(process.argv[3]);
  const worker = { bare: bareLoop, source: materializeSource, infer: materializeInference }[
    job.kind
  ];
  emitResult(await worker(job));
} else {
  emitResult(await main());
}
