import { describe, it } from "vitest";
import {
  type CrashResumeConfig,
  expectCrashReport,
  formatCrashReport,
  runCrashResume,
} from "../../helpers/crash-resume.js";
import { BACKENDS } from "../../helpers/test-store.js";

describe.each(BACKENDS)("strata materialize SIGKILLed 10 times on %s", (backend) => {
  it("resumes each time to the outputs of an uninterrupted run, paying twice only for calls lost at the kills", async () => {
    const config: CrashResumeConfig = {
      backend,
      documents: 2_000,
      kills: 10,
      seed: 20_260_114,
      maxConcurrency: 32,
      latencyMs: 20,
      jitterMs: 20,
    };
    const report = await runCrashResume(config);
    console.log(formatCrashReport(config, report));
    expectCrashReport(config, report);
  });
});
