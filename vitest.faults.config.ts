import { defineConfig } from "vitest/config";

/** The long fault-injection suites: crash and restart loops, outages, concurrent runs. */
export default defineConfig({
  test: {
    include: ["test/faults/long/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 120_000,
    globalSetup: ["test/global-setup.ts"],
  },
});
