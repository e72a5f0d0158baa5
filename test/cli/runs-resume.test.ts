import { afterEach, describe, expect, it } from "vitest";
import { addDecimals, toFemtos } from "../../src/util/decimal.js";
import {
  createInferenceProject,
  type InferenceProject,
  parseStdout,
  plainDecimal,
  waitUntil,
} from "../helpers/inference-project.js";
import { CLI_TEST_OPTIONS } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { BACKENDS, type Backend } from "../helpers/test-store.js";

// `strata runs resume` of runs that called a model: the compiled CLI (`npm run build` first)
// against a simulator in this process, each test with its own project and database.

interface RunJson {
  id: string;
  status: string;
  costUsd: string;
  maxCostUsd: string | null;
  resumedFrom: string | null;
}

interface RunShowJson extends RunJson {
  spentUsd: string;
  resumedBy: string | null;
}

interface CostRow {
  run: string;
  calls: number;
  cacheHits?: number;
  costUsd: string;
}

interface MaterializeJson {
  runId: string;
  status: string;
  costUsd: string;
}

function ok(result: CliResult): CliResult {
  expect(result.code, result.stderr).toBe(0);
  return result;
}

/** One line on stderr, exit code 2, nothing on stdout. */
function refused(result: CliResult): string {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

async function show(p: InferenceProject, id: string): Promise<RunShowJson> {
  return parseStdout<RunShowJson>(ok(await p.cli(["runs", "show", id, "--json"])));
}

/** The ledger's billed calls (not cache hits) of one run. */
async function billedCallsOf(p: InferenceProject, runId: string): Promise<number> {
  const rows = parseStdout<CostRow[]>(
    ok(await p.cli(["costs", "--by", "run", "--run", runId, "--format", "json"])),
  );
  return rows.find((r) => r.run === runId)?.calls ?? 0;
}

describe("strata runs resume", CLI_TEST_OPTIONS, () => {
  const disposals: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const dispose of disposals.splice(0)) await dispose().catch(() => {});
  });

  async function project(
    backend: Backend,
    config: { documents: number; salt: string; maxConcurrency?: number },
    latencyMs: number,
  ): Promise<InferenceProject> {
    const p = await createInferenceProject(backend, config, { latencyMs });
    disposals.push(() => p.dispose());
    return p;
  }

  describe.each(BACKENDS)("on %s", (backend) => {
    it("of a --no-cache run reuses the answers the run paid for, and only those", async () => {
      const documents = 40;
      const p = await project(backend, { documents, salt: `nocache-${backend}` }, 40);
      // an earlier, unrelated run answered every document
      ok(await p.cli(["materialize", "--select", "*"]));
      expect(p.billed()).toBe(documents);

      // --no-cache pays again; Ctrl-C once a part of the documents is paid
      const run = p.start(["materialize", "--select", "*", "--no-cache", "--json"]);
      await waitUntil(() => p.billed() >= documents + 10, run.result, "calls were made");
      run.child.kill("SIGINT");
      const canceled = await run.result;
      expect(canceled.code, canceled.stderr).toBe(1);
      const { runId, status } = parseStdout<MaterializeJson>(canceled);
      expect(status).toBe("canceled");
      const answered = await billedCallsOf(p, runId);
      expect(answered).toBeGreaterThanOrEqual(10);
      expect(answered).toBeLessThan(documents);

      // the resume keeps --no-cache: it pays for what its own chain has not answered, not
      // reusing the unrelated run's answers, and never again for what the canceled run paid
      const before = p.billed();
      const resumed = parseStdout<MaterializeJson>(
        ok(await p.cli(["runs", "resume", runId, "--json"])),
      );
      expect(resumed.status).toBe("succeeded");
      expect(p.billed() - before).toBe(documents - answered);
    });

    it("keeps to the run's --max-cost across resumes; runs show says cap and spent; a resume may raise the cap", async () => {
      const documents = 60;
      const cap = "0.0001";
      const p = await project(backend, { documents, salt: `cap-${backend}`, maxConcurrency: 4 }, 5);

      const stopped = await p.cli(["materialize", "--select", "*", "--max-cost", cap, "--json"]);
      expect(stopped.code, stopped.stderr).toBe(1);
      const first = parseStdout<MaterializeJson>(stopped);
      expect(first.status).toBe("budget_exceeded");
      expect(Number(first.costUsd)).toBeGreaterThan(0);
      expect(p.billed()).toBeLessThan(documents);

      // resumed without --max-cost: the cap still covers both runs together
      const again = await p.cli(["runs", "resume", first.runId, "--json"]);
      expect(again.code, again.stderr).toBe(1);
      const second = parseStdout<MaterializeJson>(again);
      expect(second.status).toBe("budget_exceeded");
      const spent = addDecimals([first.costUsd, second.costUsd]);
      expect(toFemtos(spent)).toBeLessThanOrEqual(toFemtos(cap));

      const shown = await show(p, second.runId);
      expect(shown.resumedFrom).toBe(first.runId);
      expect(plainDecimal(shown.maxCostUsd!)).toBe(cap);
      expect(plainDecimal(shown.spentUsd)).toBe(plainDecimal(spent));
      const text = ok(await p.cli(["runs", "show", second.runId])).stdout;
      const amount = (usd: string) => plainDecimal(usd).replace(".", "\\.");
      expect(text).toMatch(
        new RegExp(`budget\\s+\\$${amount(spent)}0* spent of \\$${amount(cap)}`),
      );

      // a cap below what the chain spent is refused before anything runs
      const below = refused(await p.cli(["runs", "resume", second.runId, "--max-cost", "0.00001"]));
      expect(below).toContain("--max-cost");
      expect(below).toContain(plainDecimal(spent));

      // raising the cap finishes the run, every document paid exactly once over the chain
      const raised = parseStdout<MaterializeJson>(
        ok(await p.cli(["runs", "resume", second.runId, "--max-cost", "100", "--json"])),
      );
      expect(raised.status).toBe("succeeded");
      expect(p.billed()).toBe(documents);
      expect(await show(p, raised.runId)).toMatchObject({
        resumedFrom: second.runId,
        maxCostUsd: "100",
      });
    });
  });
});
