import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** The compiled package, `dist/`, by absolute path. */
const COMPILED = new RegExp(
  `^${fileURLToPath(new URL("./dist/", import.meta.url)).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
);

/** The long fault-injection suites: crash and restart loops, outages, concurrent runs. */
export default defineConfig({
  test: {
    include: ["test/faults/long/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
    globalSetup: ["test/global-setup.ts"],
    // The CLI tests run the compiled CLI (dist/) in the test process: Node loads it natively, as
    // it loads the project files that import it, so both share one copy of strata.
    server: { deps: { external: [COMPILED] } },
  },
});
