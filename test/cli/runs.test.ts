import { describe, expect, it } from "vitest";
import { type BackendProject, withBackendProject } from "../helpers/backend-project.js";
import { CLI_TEST_OPTIONS } from "../helpers/project-fixture.js";
import { type CliResult, startCliProcess } from "../helpers/run-cli.js";
import { BACKENDS } from "../helpers/test-store.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly), each in its own project directory with its own embedded database.

/** `a` → `b` (throws) → `c`, and `a` → `d`. */
const BRANCH_FAILURE_PROJECT = `import { asset, defineProject } from "strata";

export const a = asset({ key: "a", compute: async () => [{ id: 1 }] });
export const b = asset({
  key: "b",
  deps: { a },
  compute: async () => {
    throw new Error("the source is offline");
  },
});
export const c = asset({ key: "c", deps: { b }, compute: async () => [{ id: 1 }] });
export const d = asset({ key: "d", deps: { a }, compute: async (_ctx, { a }) => a });

export default defineProject({ assets: [a, b, c, d] });
`;

/**
 * `first` → `slow` → `last`; `slow` sleeps 10 minutes, stopping early on `ctx.signal` only when
 * `honoursSignal` (user code that ignores the signal must not keep the CLI from exiting). A CLI
 * that waited for the sleep would outlast the test, so a test never needs to time the exit.
 */
function slowProject(honoursSignal: boolean): string {
  return `import { asset, defineProject } from "strata";

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new Error("stopped sleeping"));
    });
  });

export const first = asset({ key: "first", compute: async () => [{ id: 1 }] });
export const slow = asset({
  key: "slow",
  deps: { first },
  compute: async (ctx) => {
    await sleep(600_000, ${honoursSignal ? "ctx.signal" : "undefined"});
    return [{ id: 1 }];
  },
});
export const last = asset({ key: "last", deps: { slow }, compute: async () => [{ id: 1 }] });

export default defineProject({ assets: [first, slow, last] });
`;
}

interface RunListItem {
  id: string;
  status: string;
  selection: string;
  startedAt: string;
  finishedAt: string | null;
  costUsd: string;
  error?: string | null;
}

interface RunShow {
  id: string;
  status: string;
  error: string | null;
  resumedFrom?: string | null;
  resumedBy?: string | null;
  steps: Array<{ key: string; status: string; error: string | null; rows: number | null }>;
}

function ok(result: CliResult): CliResult {
  expect(result.code, result.stderr).toBe(0);
  return result;
}

async function listRuns(project: BackendProject): Promise<RunListItem[]> {
  return JSON.parse(ok(await project.cli(["runs", "--json"])).stdout) as RunListItem[];
}

async function showRun(project: BackendProject, id: string): Promise<RunShow> {
  return JSON.parse(ok(await project.cli(["runs", "show", id, "--json"])).stdout) as RunShow;
}

/** Each step's status and error, by asset key. */
function stepsByKey(run: RunShow): Record<string, { status: string; error: string | null }> {
  return Object.fromEntries(run.steps.map((s) => [s.key, { status: s.status, error: s.error }]));
}

/** The shortest prefix (of at least 4 characters) of `id` that no id in `others` starts with. */
function uniquePrefix(id: string, others: ReadonlyArray<string>): string {
  for (let n = 4; n < id.length; n++) {
    const prefix = id.slice(0, n);
    if (!others.some((o) => o.startsWith(prefix))) return prefix;
  }
  return id;
}

describe.concurrent("strata runs", CLI_TEST_OPTIONS, () => {
  it("reports a failed branch: the failing step and why, skipped downstream, other branches built", () =>
    withBackendProject("pglite", BRANCH_FAILURE_PROJECT, async (project) => {
      const before = ok(await project.cli(["materialize", "--select", "a"]));
      expect(before.stdout).toMatch(/run \S+ succeeded/);

      const failed = await project.cli(["materialize", "--select", "*"]);
      expect(failed.code).toBe(1);
      expect(failed.stdout).toMatch(/run \S+ failed/);
      expect(failed.stderr).toContain('asset "b" failed: the source is offline');

      // newest first, with DESIGN.md's fields
      const runs = await listRuns(project);
      expect(runs).toHaveLength(2);
      const [latest, earlier] = runs as [RunListItem, RunListItem];
      expect(latest).toMatchObject({ status: "failed", selection: "*", costUsd: "0" });
      expect(earlier).toMatchObject({ status: "succeeded", selection: "a", costUsd: "0" });
      for (const run of runs) {
        expect(run.id).toEqual(expect.any(String));
        expect(Date.parse(run.startedAt)).not.toBeNaN();
        expect(Date.parse(run.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(run.startedAt));
      }
      expect(Date.parse(latest.startedAt)).toBeGreaterThanOrEqual(Date.parse(earlier.startedAt));

      const show = await showRun(project, latest.id);
      expect(show).toMatchObject({ id: latest.id, status: "failed" });
      expect(show.error).toContain('asset "b" failed: the source is offline');
      expect(stepsByKey(show)).toEqual({
        a: { status: "succeeded", error: null },
        b: { status: "failed", error: 'asset "b" failed: the source is offline' },
        c: { status: "skipped", error: expect.stringContaining('"b"') },
        d: { status: "succeeded", error: null },
      });

      // a unique prefix of the id is enough; the text output tells the same story
      const text = ok(
        await project.cli(["runs", "show", uniquePrefix(latest.id, [earlier.id])]),
      ).stdout;
      expect(text).toContain(`run ${latest.id}: failed`);
      expect(text).toContain('asset "b" failed: the source is offline');
      expect(text).toMatch(/^c {2,}skipped {2,}.*"b"/m);
      expect(text).toMatch(/^d {2,}succeeded {2,}/m);

      const unknown = await project.cli(["runs", "show", "no-such-run"]);
      expect(unknown.code).toBe(2);
      expect(unknown.stdout).toBe("");
      expect(unknown.stderr.trim()).toBe(
        'strata: no run has the id "no-such-run"; see "strata runs"',
      );
    }));
});

/** Starts `strata materialize --select '*'` and waits until `first` has been built. */
async function startSlowRun(project: BackendProject) {
  const run = startCliProcess(["materialize", "--select", "*"], {
    cwd: project.project.dir,
    timeoutMs: 90_000,
  });
  await waitFor(run, (stderr) => stderr.includes("✓ first succeeded"));
  return run;
}

/** Polls the child's stderr until `done` holds; fails when the child exits first. */
async function waitFor(
  run: ReturnType<typeof startCliProcess>,
  done: (stderr: string) => boolean,
): Promise<void> {
  let exited = false;
  void run.result.then(() => {
    exited = true;
  });
  const deadline = Date.now() + 60_000;
  while (!done(run.output().stderr)) {
    if (exited || Date.now() > deadline) {
      throw new Error(`the CLI did not get there; stderr:\n${run.output().stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.concurrent("strata materialize interrupted with Ctrl-C", CLI_TEST_OPTIONS, () => {
  it.each([
    // the step stops on the signal: the run ends then, not after the grace period
    { honoursSignal: true, slowError: '(asset "slow" failed: stopped sleeping)' },
    // the 5 s cancel grace, then the process must exit although the compute never returns
    { honoursSignal: false, slowError: "the run was canceled while this step was running" },
  ])(
    "cancels the run, keeping finished steps (step honours ctx.signal: $honoursSignal)",
    ({ honoursSignal, slowError }) =>
      withBackendProject("pglite", slowProject(honoursSignal), async (project) => {
        const run = await startSlowRun(project);
        run.child.kill("SIGINT");
        const result = await run.result;
        expect(result.code, result.stderr).toBe(1);
        expect(result.stderr).toContain("SIGINT received; canceling the run");
        expect(result.stdout).toMatch(/run \S+ canceled/);

        const [latest] = await listRuns(project);
        expect(latest).toMatchObject({ status: "canceled", selection: "*" });
        const show = await showRun(project, latest!.id);
        expect(show.status).toBe("canceled");
        expect(stepsByKey(show)).toEqual({
          first: { status: "succeeded", error: null },
          slow: { status: "canceled", error: expect.stringContaining(slowError) },
          last: { status: "canceled", error: expect.stringContaining("canceled") },
        });
        // which of the two ended the step: its own stop on the signal, or the grace period
        const stoppedItself = stepsByKey(show).slow!.error!.includes("stopped sleeping");
        expect(stoppedItself).toBe(honoursSignal);
      }),
  );

  it("exits at once on a second Ctrl-C, and the next command fixes the run up as failed", () =>
    withBackendProject("pglite", slowProject(false), async (project) => {
      const run = await startSlowRun(project);
      run.child.kill("SIGINT");
      await waitFor(run, (stderr) => stderr.includes("canceling the run"));
      run.child.kill("SIGINT");
      // exit code 130 is the second Ctrl-C's own exit: the grace period's end would give 1
      const result = await run.result;
      expect(result.code, result.stderr).toBe(130);
      expect(result.stderr).toContain("SIGINT again; exiting now");
      expect(result.stdout).not.toMatch(/run \S+ canceled/);

      const [latest] = await listRuns(project);
      expect(latest).toMatchObject({ status: "failed", selection: "*" });
      expect(latest!.error).toContain(`strata runs resume ${latest!.id}`);
      const show = await showRun(project, latest!.id);
      expect(stepsByKey(show)).toEqual({
        first: { status: "succeeded", error: null },
        slow: { status: "failed", error: expect.stringContaining("process ended") },
        last: { status: "canceled", error: expect.stringContaining("process ended") },
      });
    }));
});

/** `a` → `b` → `c`; `b` fails until the file `b-ok` exists in the project directory. */
function flakyProject(name: string): string {
  // beside the project file, not in the working directory: the CLI runs in the test's process
  return `import { existsSync } from "node:fs";
import { asset, defineProject } from "strata";

export const a = asset({ key: "a", compute: async () => [{ id: 1 }] });
export const b = asset({
  key: "b",
  deps: { a },
  compute: async () => {
    if (!existsSync(new URL("b-ok", import.meta.url))) throw new Error("b is not ready");
    return [{ id: 1 }];
  },
});
export const c = asset({ key: "c", deps: { b }, compute: async () => [{ id: 1 }] });

export default defineProject({ name: ${JSON.stringify(name)}, assets: [a, b, c] });
`;
}

interface ResumeJson {
  runId: string;
  status: string;
  assets: Array<{ key: string; status: string }>;
}

/** Exit code 2, nothing on stdout, one line on stderr: the line. */
function refusedLine(result: CliResult): string {
  expect(result.code, result.stderr).toBe(2);
  expect(result.stdout).toBe("");
  const lines = result.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe.each(BACKENDS)("strata runs resume on %s", (backend) => {
  it(
    "shows which run a resume resumed, and resumes a chain only at its newest run",
    CLI_TEST_OPTIONS,
    () =>
      withBackendProject(backend, flakyProject("flaky"), async (project) => {
        const failed = await project.cli(["materialize", "--select", "*", "--json"]);
        expect(failed.code, failed.stderr).toBe(1);
        const first = (JSON.parse(failed.stdout) as ResumeJson).runId;
        const again = await project.cli(["runs", "resume", first, "--json"]);
        expect(again.code, again.stderr).toBe(1);
        const second = (JSON.parse(again.stdout) as ResumeJson).runId;

        const runs = (await listRuns(project)) as Array<
          RunListItem & { resumedFrom: string | null }
        >;
        expect(runs.map((r) => [r.id, r.resumedFrom])).toEqual([
          [second, first],
          [first, null],
        ]);
        expect(ok(await project.cli(["runs"])).stdout).toContain(`resumed from ${first}`);
        expect(ok(await project.cli(["runs", "show", second])).stdout).toContain(
          `resumed from ${first}`,
        );
        expect(await showRun(project, first)).toMatchObject({
          resumedFrom: null,
          resumedBy: second,
        });

        // the older run of the chain is refused, naming the newer one
        const older = refusedLine(await project.cli(["runs", "resume", first]));
        expect(older).toContain(`run ${first} was already resumed by run ${second}`);
        expect(older).toContain(`strata runs resume ${second}`);

        await project.project.write({ "b-ok": "" });
        const done = await project.cli(["runs", "resume", second, "--json"]);
        expect(done.code, done.stderr).toBe(0);
        const third = JSON.parse(done.stdout) as ResumeJson;
        expect(third.status).toBe("succeeded");
        expect(third.assets.map((s) => s.key)).toEqual(["b", "c"]);

        expect(refusedLine(await project.cli(["runs", "resume", third.runId]))).toContain(
          `run ${third.runId} succeeded; there is nothing to resume`,
        );
        const finished = refusedLine(await project.cli(["runs", "resume", first]));
        expect(finished).toContain(`already resumed by run ${second}`);
        expect(finished).toContain(`run ${third.runId}`);
        expect(finished).toContain("succeeded");
        expect(await listRuns(project)).toHaveLength(3);
      }),
  );

  it(
    "refuses a run of another project, and steps the project no longer has, building nothing",
    CLI_TEST_OPTIONS,
    () =>
      withBackendProject(
        backend,
        {
          "strata.config.ts": flakyProject("alpha"),
          // another project sharing the database (and the asset "a", but not "b" or "c")
          "other.ts": `import { asset, defineProject } from "strata";
export const a = asset({ key: "a", compute: async () => [{ id: 2 }] });
export const x = asset({ key: "x", deps: { a }, compute: async () => [{ id: 2 }] });
export default defineProject({ name: "beta", assets: [a, x] });
`,
        },
        async (project) => {
          const failed = await project.cli(["materialize", "--select", "*", "--json"]);
          expect(failed.code, failed.stderr).toBe(1);
          const run = (JSON.parse(failed.stdout) as ResumeJson).runId;

          const other = refusedLine(
            await project.cli(["--project", "other.ts", "runs", "resume", run]),
          );
          expect(other).toContain(`run ${run} belongs to project "alpha"`);
          expect(other).toContain(project.project.file);
          expect(other).toContain('"b"');

          // the project itself lost an asset the run planned
          await project.project.write({
            "strata.config.ts": `import { asset, defineProject } from "strata";
export const a = asset({ key: "a", compute: async () => [{ id: 1 }] });
export const c = asset({ key: "c", deps: { a }, compute: async () => [{ id: 1 }] });
export default defineProject({ name: "alpha", assets: [a, c] });
`,
          });
          const lost = refusedLine(await project.cli(["runs", "resume", run]));
          expect(lost).toContain(`run ${run} planned`);
          expect(lost).toContain('"b"');
          expect(lost).not.toContain('"c"');

          const runs = await listRuns(project);
          expect(runs.map((r) => r.id)).toEqual([run]);
          const show = await showRun(project, run);
          expect(show.steps.map((s) => s.key)).toEqual(["a", "b", "c"]);
        },
      ),
  );
});
