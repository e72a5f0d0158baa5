// The CLI start-up benchmark: whole `strata` processes on the example project, timed from spawn
// to exit, the way a person waits for them.
//
// examples/document-analysis is copied into a temp dir set up as a user's project (an ESM
// package with `strata` installed as node_modules/strata, a link to this checkout). Each command
// runs once unmeasured (warm: the OS file cache, the project's transpile cache and the database
// exist), then BENCH_CLI_RUNS times (default 7); figures are medians. Cases: the embedded
// database; Postgres (a database of its own, created and dropped; skipped when the server is
// unreachable); and the first command in a new project (`strata list` with no `.strata/`: it
// creates the embedded database), with and without the project's transpile cache.

import { spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { emitResult } from "./lib/bench-child.mjs";
import { createBenchDatabase } from "./lib/bench-database.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const CLI = join(ROOT, "dist", "cli", "main.js");
const EXAMPLE = join(ROOT, "examples", "document-analysis");
const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 7);
const TIME = existsSync("/usr/bin/time") ? "/usr/bin/time" : undefined;

const GOALS_MS = {
  "--version": 150,
  lineage: 500,
  embedded: 800,
  postgres: 500,
  firstCommand: 1500,
};

const notes = [`load average before: ${loadAverage()}`];
const project = createProject();
try {
  const cases = [await embeddedCase(), await postgresCase(), await firstCommandCase()].filter(
    (c) => c !== undefined,
  );
  notes.push(`load average after: ${loadAverage()}`);
  notes.push(
    `${RUNS} runs per command after one warm-up, medians of whole processes (spawn to exit)${TIME ? "; cpu = user + system from /usr/bin/time" : ""}`,
  );
  emitResult({ name: "cli", cases, notes });
} finally {
  rmSync(project.root, { recursive: true, force: true });
}

/** `--version`, `lineage`, `list`, `runs`, `costs` on the embedded database, warm. */
async function embeddedCase() {
  const env = childEnv();
  const metrics = {};
  const goals = [];
  for (const [args, limit, check] of [
    [["--version"], GOALS_MS["--version"], (out) => /^\d+\.\d+\.\d+/.test(out)],
    [["lineage"], GOALS_MS.lineage, (out) => out.includes("raw_documents")],
    [["list"], GOALS_MS.embedded, (out) => out.includes("document_summaries")],
    [["runs"], GOALS_MS.embedded, () => true],
    [["costs"], GOALS_MS.embedded, () => true],
  ]) {
    const figures = await measure(args, env, { check });
    record(metrics, goals, `strata ${args.join(" ")}`, figures, limit);
  }
  return { name: "embedded database, warm", metrics, goals };
}

/** `list`, `runs`, `costs` on Postgres, warm. */
async function postgresCase() {
  let database;
  try {
    database = await createBenchDatabase("strata_bench_cli");
  } catch (error) {
    notes.push(`Postgres skipped: ${error instanceof Error ? error.message : error}`);
    return undefined;
  }
  try {
    const env = childEnv({ DATABASE_URL: database.url });
    await run(["db", "migrate"], env);
    const metrics = {};
    const goals = [];
    for (const args of [["list"], ["runs"], ["costs"]]) {
      const figures = await measure(args, env, {
        check: (out) => args[0] !== "list" || out.includes("document_summaries"),
      });
      record(metrics, goals, `strata ${args.join(" ")}`, figures, GOALS_MS.postgres);
    }
    return { name: "Postgres, warm", metrics, goals };
  } finally {
    await database.drop();
  }
}

/** `strata list` in a project without `.strata/`: it creates the embedded database. */
async function firstCommandCase() {
  const env = childEnv();
  const dropDatabase = () => rmSync(join(project.dir, ".strata"), { recursive: true, force: true });
  const dropEverything = () => {
    dropDatabase();
    rmSync(join(project.dir, "node_modules", ".cache"), { recursive: true, force: true });
  };
  const check = (out) => out.includes("document_summaries");
  const metrics = {};
  const goals = [];
  const first = await measure(["list"], env, { before: dropEverything, check });
  record(metrics, goals, "new project: strata list", first, GOALS_MS.firstCommand);
  const warmCache = await measure(["list"], env, { before: dropDatabase, check });
  record(metrics, goals, "new database only: strata list", warmCache);
  return { name: "first command", metrics, goals };
}

function record(metrics, goals, name, figures, limit) {
  metrics[`${name} ms`] = round(figures.wallMs);
  if (figures.cpuMs !== undefined) metrics[`${name} cpu ms`] = round(figures.cpuMs);
  if (limit !== undefined) goals.push({ name, value: round(figures.wallMs), limit, unit: "ms" });
}

/** Runs `strata ARGS` once unmeasured, then RUNS times; medians of wall and cpu time. */
async function measure(args, env, { before = () => {}, check = () => true } = {}) {
  before();
  await run(args, env, check);
  const walls = [];
  const cpus = [];
  for (let i = 0; i < RUNS; i++) {
    before();
    const { wallMs, cpuMs } = await run(args, env, check);
    walls.push(wallMs);
    if (cpuMs !== undefined) cpus.push(cpuMs);
  }
  return { wallMs: median(walls), cpuMs: cpus.length > 0 ? median(cpus) : undefined };
}

/** One `strata` process in the project dir; fails unless it exits 0 and `check(stdout)` holds. */
async function run(args, env, check = () => true) {
  const timeFile = join(project.root, "time.txt");
  const argv = [CLI, ...args];
  const [command, commandArgs] = TIME
    ? [TIME, ["-f", "%U %S", "-o", timeFile, process.execPath, ...argv]]
    : [process.execPath, argv];
  const start = performance.now();
  const { code, stdout, stderr } = await new Promise((resolveRun, reject) => {
    const child = spawn(command, commandArgs, { cwd: project.dir, env, stdio: "pipe" });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (c) => resolveRun({ code: c, stdout: out, stderr: err }));
  });
  const wallMs = performance.now() - start;
  if (code !== 0 || !check(stdout)) {
    throw new Error(`strata ${args.join(" ")} exited with ${code}: ${stderr || stdout}`);
  }
  if (TIME === undefined) return { wallMs };
  const [user, system] = readFileSync(timeFile, "utf8").trim().split("\n").pop().split(" ");
  return { wallMs, cpuMs: (Number(user) + Number(system)) * 1000 };
}

/** The example, copied as a user's project: an ESM package with `strata` installed. */
function createProject() {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "strata-bench-cli-")));
  const dir = join(root, "document-analysis");
  cpSync(EXAMPLE, dir, {
    recursive: true,
    filter: (src) => !src.split(/[\\/]/).includes(".strata"),
  });
  writeFileSync(
    join(dir, "package.json"),
    `${JSON.stringify({ name: "document-analysis", private: true, type: "module" })}\n`,
  );
  mkdirSync(join(dir, "node_modules"));
  symlinkSync(ROOT, join(dir, "node_modules", "strata"), "dir");
  return { root, dir };
}

function childEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  if (extra.DATABASE_URL === undefined) delete env.DATABASE_URL;
  delete env.STRATA_PROJECT;
  return env;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function round(ms) {
  return Math.round(ms);
}

function loadAverage() {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(", ");
}
