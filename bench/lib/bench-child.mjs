// Helpers for benchmark files (bench/*.bench.mjs); see bench/README.md for the contract.

import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";

/** Peak resident set size of this process so far, in KiB (Linux: ru_maxrss). */
export function maxRssKiB() {
  return process.resourceUsage().maxRSS;
}

/** Collects garbage when node runs with --expose-gc, so one phase's garbage is not billed to the next. */
export function collectGarbage() {
  globalThis.gc?.();
}

/** Runs `fn` and returns `[result, milliseconds]`; awaits it when it returns a promise. */
export async function timed(fn) {
  collectGarbage();
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

/**
 * Prints the result of a bench as the last line of stdout, the one line the harness reads.
 * `maxRssKiB` (the peak of this process) is added when the result has none.
 */
export function emitResult(result) {
  const line = JSON.stringify({ maxRssKiB: maxRssKiB(), ...result });
  process.stdout.write(`\n${line}\n`);
}

/** Parses the last non-empty stdout line of a bench process as its JSON result. */
export function parseResultLine(stdout) {
  const lines = stdout.trimEnd().split("\n");
  const last = lines[lines.length - 1] ?? "";
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`the last stdout line is not a JSON result: ${last.slice(0, 200)}`);
  }
}

/**
 * Runs `node [nodeArgs] script [args]` with stderr passed through, and resolves with its JSON
 * result line; used by benches that isolate each case in its own process (peak RSS per case).
 */
export function runNodeChild(script, args = [], nodeArgs = ["--expose-gc"]) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code !== 0) {
        reject(new Error(`${script} ${args.join(" ")} exited with ${signal ?? code}`));
        return;
      }
      try {
        resolve(parseResultLine(stdout));
      } catch (error) {
        reject(error);
      }
    });
  });
}
