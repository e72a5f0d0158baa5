import { accessSync, constants, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** The compiled package, `dist/`, by absolute path. */
const COMPILED = new RegExp(
  `^${fileURLToPath(new URL("./dist/", import.meta.url)).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
);

/**
 * Where the tests' projects, databases and temp files go: a memory file system where the machine
 * has one (/dev/shm) and TMPDIR does not say otherwise. A test creates and deletes thousands of
 * small files (a database directory holds a thousand); on a disk each costs a millisecond of
 * kernel time, in memory a tenth of that.
 */
function testTempDir(): string | undefined {
  if (process.env.TMPDIR !== undefined) return undefined;
  try {
    if (!statSync("/dev/shm").isDirectory()) return undefined;
    accessSync("/dev/shm", constants.W_OK);
    return "/dev/shm";
  } catch {
    return undefined;
  }
}

const TMPDIR = testTempDir();

// As the strata binary does (src/cli/main.ts): the embedded database's WebAssembly stays on V8's
// first tier unless it runs long, instead of being recompiled for every short-lived database.
const V8_MAJOR = Number(process.versions.v8.split(".")[0]);
const EXEC_ARGV = V8_MAJOR >= 10 && V8_MAJOR <= 13 ? ["--wasm-tiering-budget=60000000"] : [];

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The long fault-injection suites run with `npm run test:faults`.
    exclude: ["test/faults/long/**", "**/node_modules/**"],
    pool: "forks",
    // Every core: the CLI tests wait on child processes, simulated endpoints and the disk, and
    // vitest's default (one core left free) runs one file at a time on two cores.
    maxWorkers: availableParallelism(),
    // Test files share their worker process: the embedded database's WebAssembly, the loaded
    // modules and the transpiled sources are built once per worker instead of once per file
    // (4 m 19 s → 3 m 28 s on an idle 2-core machine). Every test file makes its own projects,
    // databases and simulators, and restores what it changes (timers, TZ).
    isolate: false,
    execArgv: EXEC_ARGV,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ["test/global-setup.ts"],
    env: TMPDIR === undefined ? {} : { TMPDIR },
    // The CLI tests run the compiled CLI (dist/) in the test process: Node loads it natively, as
    // it loads the project files that import it, so both share one copy of strata.
    server: { deps: { external: [COMPILED] } },
  },
});
