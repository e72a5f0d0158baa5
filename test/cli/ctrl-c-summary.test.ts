import { afterEach, describe, expect, it } from "vitest";
import {
  createInferenceProject,
  type InferenceProject,
  parseStdout,
  plainDecimal,
  waitUntil,
} from "../helpers/inference-project.js";
import { CLI_TEST_OPTIONS } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { canOpenTerminal, screenLines, startCliOnTerminal } from "../helpers/terminal-screen.js";
import { BACKENDS, type Backend } from "../helpers/test-store.js";

// Ctrl-C during a run that calls a model: the compiled CLI (`npm run build` first) against a
// simulator in this process. Every test waits on events (calls billed, lines shown), never on time.

interface MaterializeJson {
  runId: string;
  status: string;
  costUsd: string;
  assets: Array<{
    key: string;
    status: string;
    promptTokens: number;
    completionTokens: number;
    costUsd: string;
  }>;
}

function ok(result: CliResult): CliResult {
  expect(result.code, result.stderr).toBe(0);
  return result;
}

/** What the ledger holds for one run: billed calls and cost. */
async function ledgerOf(p: InferenceProject, runId: string) {
  const [row] = parseStdout<Array<{ calls: number; promptTokens: number; costUsd: string }>>(
    ok(await p.cli(["costs", "--by", "run", "--run", runId, "--format", "json"])),
  );
  return row!;
}

describe("a run canceled with Ctrl-C", CLI_TEST_OPTIONS, () => {
  const disposals: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const dispose of disposals.splice(0)) await dispose().catch(() => {});
  });

  async function project(backend: Backend, salt: string): Promise<InferenceProject> {
    const p = await createInferenceProject(
      backend,
      { documents: 400, salt, maxConcurrency: 4 },
      { latencyMs: 30 },
    );
    disposals.push(() => p.dispose());
    return p;
  }

  it.each(BACKENDS)(
    "reports the tokens and cost its canceled step spent, as on the ledger, and how to resume (%s)",
    async (backend) => {
      const p = await project(backend, `sigint-${backend}`);
      const run = p.start(["materialize", "--select", "*", "--json"]);
      await waitUntil(() => p.billed() >= 12, run.result, "calls were billed");
      run.child.kill("SIGINT");
      const result = await run.result;
      expect(result.code, result.stderr).toBe(1);
      const summary = parseStdout<MaterializeJson>(result);
      expect(summary.status).toBe("canceled");
      const ledger = await ledgerOf(p, summary.runId);
      expect(ledger.calls).toBeGreaterThanOrEqual(10);

      const analyses = summary.assets.find((a) => a.key === "analyses")!;
      expect(analyses.status).toBe("canceled");
      expect(analyses.promptTokens).toBe(ledger.promptTokens);
      expect(analyses.completionTokens).toBeGreaterThan(0);
      expect(plainDecimal(analyses.costUsd)).toBe(plainDecimal(ledger.costUsd));
      expect(plainDecimal(summary.costUsd)).toBe(plainDecimal(ledger.costUsd));
      expect(result.stderr).toContain(`strata runs resume ${summary.runId}`);
    },
  );

  it.skipIf(!canOpenTerminal())(
    "on a terminal clears the live progress and leaves the notice, the summary and the resume hint",
    async () => {
      const p = await project("pglite", "sigint-terminal");
      const run = startCliOnTerminal(["materialize", "--select", "*"], p.fixture.dir);
      // Ctrl-C once the progress bar of the inference step is on the screen
      await waitUntil(
        () => p.billed() >= 12 && screenLines(run.output()).some((l) => l.includes("⠿ analyses █")),
        run.result,
        "the progress bar was drawn",
      );
      run.type("\x03");
      const { code, output } = await run.result;
      const screen = screenLines(output);
      expect(code, screen.join("\n")).toBe(1);

      // nothing of the live frame is left; the notice, the summary and the hint are
      expect(screen.filter((l) => l.includes("⠿") || l.includes("steps done"))).toEqual([]);
      expect(screen).toContain(
        "strata: SIGINT received; canceling the run (again to exit at once)",
      );
      const summary = screen.map((l) => /^run (\S+) canceled; cost \$(\S+)$/.exec(l)).find(Boolean);
      expect(summary, screen.join("\n")).toBeDefined();
      const [, runId, cost] = summary!;
      const ledger = await ledgerOf(p, runId!);
      expect(Number(ledger.costUsd)).toBeGreaterThan(0);
      expect(plainDecimal(cost!)).toBe(plainDecimal(ledger.costUsd));
      expect(screen.some((l) => l.endsWith(`strata runs resume ${runId}`))).toBe(true);
    },
  );
});
