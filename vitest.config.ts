import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/** The compiled package, `dist/`, by absolute path. */
const COMPILED = new RegExp(
  `^${fileURLToPath(new URL("./dist/", import.meta.url)).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`,
);

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The long fault-injection suites run with `npm run test:faults`.
    exclude: ["test/faults/long/**", "**/node_modules/**"],
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ["test/global-setup.ts"],
    // The CLI tests run the compiled CLI (dist/) in the test process: Node loads it natively, as
    // it loads the project files that import it, so both share one copy of strata.
    server: { deps: { external: [COMPILED] } },
  },
});
