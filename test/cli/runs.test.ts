import { describe, expect, it } from "vitest";
import { type BackendProject, withBackendProject } from "../helpers/backend-project.js";
import { CLI_TEST_OPTIONS } from "../helpers/project-fixture.js";
import { type CliResult, startCliProcess } from "../helpers/run-cli.js";

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
 * `first` → `slow` → `last`; `slow` sleeps 25 s, stopping early on `ctx.signal` only when
 * `honoursSignal` (user code that ignores the signal must not keep the CLI from exiting).
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
    await sleep(25_000, ${honoursSignal ? "ctx.signal" : "undefined"});
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

/** Resolves the run's result and how long after now it arrived. */
async function timed(result: Promise<CliResult>): Promise<{ result: CliResult; ms: number }> {
  const start = Date.now();
  const done = await result;
  return { result: done, ms: Date.now() - start };
}

describe.concurrent("strata materialize interrupted with Ctrl-C", CLI_TEST_OPTIONS, () => {
  it.each([
    { honoursSignal: true, within: 5_000 },
    // the 5 s cancel grace, then the process must exit although the compute never returns
    { honoursSignal: false, within: 12_000 },
  ])(
    "cancels the run, keeping finished steps (step honours ctx.signal: $honoursSignal)",
    ({ honoursSignal, within }) =>
      withBackendProject("pglite", slowProject(honoursSignal), async (project) => {
        const run = await startSlowRun(project);
        run.child.kill("SIGINT");
        const { result, ms } = await timed(run.result);
        expect(result.code, result.stderr).toBe(1);
        expect(result.stderr).toContain("SIGINT received; canceling the run");
        expect(result.stdout).toMatch(/run \S+ canceled/);
        expect(ms).toBeLessThan(within);

        const [latest] = await listRuns(project);
        expect(latest).toMatchObject({ status: "canceled", selection: "*" });
        const show = await showRun(project, latest!.id);
        expect(show.status).toBe("canceled");
        expect(stepsByKey(show)).toEqual({
          first: { status: "succeeded", error: null },
          slow: { status: "canceled", error: expect.stringContaining("canceled") },
          last: { status: "canceled", error: expect.stringContaining("canceled") },
        });
      }),
  );

  it("exits at once on a second Ctrl-C, and the next command fixes the run up as failed", () =>
    withBackendProject("pglite", slowProject(false), async (project) => {
      const run = await startSlowRun(project);
      run.child.kill("SIGINT");
      await waitFor(run, (stderr) => stderr.includes("canceling the run"));
      run.child.kill("SIGINT");
      const { result, ms } = await timed(run.result);
      expect(result.code, result.stderr).toBe(130);
      expect(result.stderr).toContain("SIGINT again; exiting now");
      expect(ms).toBeLessThan(3_000);

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
