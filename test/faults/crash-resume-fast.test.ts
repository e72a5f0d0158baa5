import { describe, it } from "vitest";
import {
  type CrashResumeConfig,
  expectCrashReport,
  formatCrashReport,
  runCrashResume,
} from "../helpers/crash-resume.js";

// The quick cut of test/faults/long/crash-resume.test.ts: two kills, 400 documents, PGlite.
describe("strata materialize SIGKILLed twice on the embedded database", () => {
  it("resumes each time to the outputs of an uninterrupted run, paying twice only for calls lost at the kills", {
    timeout: 150_000,
  }, async () => {
    const config: CrashResumeConfig = {
      backend: "pglite",
      documents: 400,
      kills: 2,
      seed: 7,
      maxConcurrency: 32,
      latencyMs: 20,
      jitterMs: 20,
    };
    const report = await runCrashResume(config);
    console.log(formatCrashReport(config, report));
    expectCrashReport(config, report);
  });
});
