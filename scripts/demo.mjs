#!/usr/bin/env node
// The quickstart behind `npm run demo`: materializes examples/document-analysis against the
// simulated endpoint (`strata sim`) into a fresh embedded database, shows the lineage, the run and
// its cost per model, then runs the same materialization again to show that it costs nothing.
//
// It works on a temporary copy of the example, so every demo starts fresh and the checkout is left
// untouched. Needs no network, no GPU and no Postgres server. `--keep` keeps the copy (its
// `.strata/` holds the database and the Arrow files) and prints where it is.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(REPO_ROOT, "dist", "cli", "main.js");
const EXAMPLE = join(REPO_ROOT, "examples", "document-analysis");
const KEEP = process.argv.includes("--keep");
const started = Date.now();

/** Everything to undo on the way out, newest first. */
const cleanups = [];
/** The `strata` commands running now (at most one). */
const running = new Set();
let sim;
let interrupted = false;

async function main() {
  if (!existsSync(CLI)) fail(`${CLI} not found; run "npm run build" first (npm run demo does)`);
  const dir = await copyExample();
  sim = await startSimulator(dir);
  const env = childEnv(sim.url);

  heading(`strata demo: the document-analysis example against ${sim.url}`);
  say(
    "a SIMULATED OpenAI-compatible endpoint (strata sim): no model is called, nothing is billed,",
  );
  say("but every call is priced as if it were, with the models' prices in strata.config.ts");

  heading("$ strata lineage");
  await strata(["lineage"], { cwd: dir, env });

  heading("$ strata materialize --select '*'");
  await strata(["materialize", "--select", "*"], { cwd: dir, env });

  heading("$ strata costs --by model");
  if (await hasCommand("costs", dir, env)) {
    await strata(["costs", "--by", "model"], { cwd: dir, env });
  } else {
    say("(this build has no `strata costs` command yet; skipped)");
  }

  heading("$ strata materialize --select '*'   (the same selection, again)");
  const again = JSON.parse(
    await strata(["materialize", "--select", "*", "--json"], { cwd: dir, env, capture: true }),
  );
  if (again.status !== "succeeded") fail(`the second run ended ${again.status}: ${again.error}`);
  const chunks = again.assets.find((a) => a.key === "analyses")?.rows ?? 0;
  const tokens = again.assets.reduce((n, a) => n + a.promptTokens + a.completionTokens, 0);
  if (again.costUsd !== "0") {
    fail(`second run: $${again.costUsd}; expected $0 with every answer from the ledger's cache`);
  }
  say(
    `second run: $0 — every answer came from the ledger's cache (${chunks} chunks, ${tokens} tokens billed)`,
  );

  heading("done");
  if (KEEP) {
    say(`the project is kept in ${dir}; try: cd ${dir} && npx strata runs`);
  } else {
    say("the project was a temporary copy of examples/document-analysis (pass --keep to keep it)");
  }
  say(`demo took ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Copies the example into a temp dir set up as a user's project: ESM, `strata` installed. */
async function copyExample() {
  const dir = await realpath(await mkdtemp(join(tmpdir(), "strata-demo-")));
  if (!KEEP) cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await cp(EXAMPLE, dir, {
    recursive: true,
    filter: (src) => !src.split(/[\\/]/).includes(".strata"),
  });
  await writeFile(
    join(dir, "package.json"),
    `${JSON.stringify({ name: "document-analysis", private: true, type: "module" }, null, 2)}\n`,
  );
  // What `npm install /path/to/this/checkout` does: link node_modules/strata to it.
  await mkdir(join(dir, "node_modules"));
  await symlink(REPO_ROOT, join(dir, "node_modules", "strata"), "dir");
  return dir;
}

/** Starts `strata sim --port 0 --json` and reads the URL it prints when it is ready. */
function startSimulator(cwd) {
  const child = spawn(process.execPath, [CLI, "sim", "--port", "0", "--json"], {
    cwd,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  cleanups.push(stop);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      try {
        resolve({ url: JSON.parse(line).url, child });
      } catch {
        reject(new Error(`strata sim printed ${JSON.stringify(line)}, not its URL as JSON`));
      }
    });
    child.once("exit", (code) => reject(new Error(`strata sim exited with code ${code}`)));
  });
}

/** The children's environment: the simulator's URL, and the embedded database, always. */
function childEnv(url) {
  const env = { ...process.env, STRATA_ENDPOINT_URL: url };
  delete env.DATABASE_URL;
  delete env.STRATA_PROJECT;
  return env;
}

/** Runs the CLI; its stdout is passed through, or returned when `capture` is set. */
function strata(args, { cwd, env, capture = false }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd,
      env,
      stdio: ["ignore", capture ? "pipe" : "inherit", "inherit"],
    });
    running.add(child);
    child.once("exit", () => running.delete(child));
    let stdout = "";
    child.stdout?.setEncoding("utf8").on("data", (d) => {
      stdout += d;
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`strata ${args.join(" ")} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/** Whether this build's CLI has a command (`strata X --help` falls back to the top-level help). */
async function hasCommand(name, cwd, env) {
  const help = await strata(["--help"], { cwd, env, capture: true });
  return new RegExp(`^\\s+${name}\\b`, "m").test(help);
}

function heading(text) {
  process.stdout.write(`\n== ${text}\n`);
}

function say(text) {
  process.stdout.write(`${text}\n`);
}

function fail(message) {
  throw new Error(message);
}

async function cleanUp() {
  while (cleanups.length > 0)
    await cleanups
      .pop()()
      .catch(() => {});
}

/** Lets a running command end: a Ctrl-C in a terminal reached it too; a `kill` of this script did not. */
async function stopRunning() {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise((resolve) => {
          child.once("exit", resolve);
          const nudge = setTimeout(() => child.kill("SIGTERM"), 500);
          const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
          child.once("exit", () => {
            clearTimeout(nudge);
            clearTimeout(force);
          });
        }),
    ),
  );
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\nstrata demo: ${signal}, stopping the simulator\n`);
    stopRunning()
      .then(cleanUp)
      .finally(() => process.exit(130));
  });
}
// Last resort (an uncaught throw): never leave the simulator running.
process.once("exit", () => sim?.child.kill("SIGKILL"));

main()
  .then(cleanUp)
  .catch(async (error) => {
    if (interrupted) return; // the signal handler cleans up and exits
    process.stderr.write(`strata demo: ${error.message}\n`);
    await cleanUp();
    process.exitCode = 1;
  });
