import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { progressLine, RunProgress } from "../../src/cli/run-progress.js";
import type { InferenceProgress } from "../../src/inference/inference-runtime.js";
import type { PlanStep } from "../../src/materialize/materialization-plan.js";

/** An asset key far wider than a terminal, as a deep warehouse layout makes them. */
const LONG_KEY = `warehouse/${"customer_support_tickets/".repeat(4)}classified_with_sentiment`;

function progress(stepId: string, more: Partial<InferenceProgress> = {}): InferenceProgress {
  return {
    stepId,
    total: 10_000,
    done: 1_234,
    failed: 3,
    cacheHits: 100,
    promptTokens: 1_000_000,
    completionTokens: 200_000,
    costUsd: "0.4200",
    ...more,
  };
}

function step(id: string): PlanStep {
  return { id, assetKey: id, partitionKey: null, codeVersion: null, inputs: [], upstreamSteps: [] };
}

describe("progressLine", () => {
  it("shows every part of a short step's line when the terminal has room", () => {
    const line = progressLine("analyses", progress("analyses"), 13_000, 120);
    expect([...line].length).toBeLessThanOrEqual(120);
    expect(line).toMatch(
      /^ {2}⠿ analyses [█░]+ 1,234\/10,000 failed 3 cached 100 tokens 1\.2M \$0\.42 95\/s ETA /,
    );
  });

  it("fits a long asset key in 80 columns, keeping its start and end, the counts and the dollars", () => {
    const id = `${LONG_KEY}[2026-01-01]`;
    const line = progressLine(id, progress(id), 13_000, 80);
    expect([...line].length).toBeLessThanOrEqual(80);
    expect(line).toMatch(/^ {2}⠿ warehouse\/\S*…\S*2026-01-01\] /);
    expect(line).toContain("1,234/10,000");
    expect(line).toContain("failed 3");
    expect(line).toContain("$0.42");
  });

  it("gives up the least useful parts first, and uses a wide terminal's room", () => {
    const narrow = progressLine("analyses", progress("analyses"), 13_000, 80);
    expect([...narrow].length).toBeLessThanOrEqual(80);
    // the rate and the tokens went; the counts, failures, cache hits, dollars and ETA stayed
    expect(narrow).toMatch(/ 1,234\/10,000 failed 3 cached 100 \$0\.42 ETA /);
    const wide = progressLine(LONG_KEY, progress(LONG_KEY), 13_000, 240);
    expect(wide).toContain(LONG_KEY);
    expect(wide).toContain("tokens 1.2M");
    expect([...wide].length).toBeLessThanOrEqual(240);
  });

  it("fits a step that has not called a model yet", () => {
    const line = progressLine(LONG_KEY, undefined, 1_500, 80);
    expect([...line].length).toBeLessThanOrEqual(80);
    expect(line).toMatch(/^ {2}⠿ warehouse\/\S*…\S*_with_sentiment running 1\.5 s$/);
  });
});

describe("RunProgress", () => {
  it("draws live lines no wider than the terminal", () => {
    let written = "";
    const terminal = Object.assign(
      new Writable({
        write(chunk, _encoding, done) {
          written += String(chunk);
          done();
        },
      }),
      { isTTY: true, columns: 80, rows: 24 },
    );
    const live = new RunProgress(terminal);
    const steps = [step(LONG_KEY), step(`${LONG_KEY}_summaries`)];
    live.onEvent({
      type: "run_started",
      runId: "r1",
      plan: { selection: "*", partitionKeys: [], steps },
    });
    live.onEvent({ type: "step_started", step: steps[0]! });
    live.onInference(progress(LONG_KEY));
    live.onEvent({ type: "step_started", step: steps[1]! });
    live.done();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are what it strips
    const lines = written.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "").split("\n");
    expect(lines.some((l) => l.includes("1,234/10,000"))).toBe(true);
    for (const line of lines) expect([...line].length, line).toBeLessThanOrEqual(80);
  });
});
