import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it, vi } from "vitest";
import {
  InProcessExecutor,
  type StepOutcome,
  type StepRunner,
} from "../../src/materialize/executor.js";
import type { MaterializationPlan, PlanStep } from "../../src/materialize/materialization-plan.js";

/** A plan from `{ step: [upstream steps] }`, in the object's order. */
function planOf(upstream: Readonly<Record<string, ReadonlyArray<string>>>): MaterializationPlan {
  const steps: PlanStep[] = Object.entries(upstream).map(([id, ups]) => ({
    id,
    assetKey: id,
    partitionKey: null,
    codeVersion: null,
    inputs: [],
    upstreamSteps: ups,
  }));
  return { selection: "*", partitionKeys: [], steps };
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * A step runner the test drives by hand: each started step waits until the test ends it.
 * Records the start order, the signals handed over and the most steps running at once.
 */
class ManualRunner {
  readonly started: string[] = [];
  readonly signals = new Map<string, AbortSignal>();
  maxRunning = 0;
  #running = new Map<string, Deferred<StepOutcome>>();
  #waiters: Array<() => void> = [];

  readonly run: StepRunner = (step, signal) => {
    const d = deferred<StepOutcome>();
    this.started.push(step.id);
    this.signals.set(step.id, signal);
    this.#running.set(step.id, d);
    this.maxRunning = Math.max(this.maxRunning, this.#running.size);
    for (const wake of this.#waiters.splice(0)) wake();
    return d.promise.finally(() => this.#running.delete(step.id));
  };

  get running(): string[] {
    return [...this.#running.keys()];
  }

  /** Waits until `ids` are all running (started and not yet ended). */
  async waitFor(...ids: string[]): Promise<void> {
    while (!ids.every((id) => this.#running.has(id))) {
      await new Promise<void>((wake) => this.#waiters.push(wake));
    }
  }

  end(id: string, outcome: StepOutcome = { status: "succeeded" }): void {
    const d = this.#running.get(id);
    if (d === undefined) throw new Error(`step "${id}" is not running`);
    d.resolve(outcome);
  }

  throw(id: string, error: unknown): void {
    const d = this.#running.get(id);
    if (d === undefined) throw new Error(`step "${id}" is not running`);
    d.reject(error);
  }
}

/** A runner that ends every step after a macrotask, recording starts and concurrency. */
function autoRunner(outcomes: Readonly<Record<string, StepOutcome>> = {}) {
  const started: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const run: StepRunner = async (step) => {
    started.push(step.id);
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    await new Promise((r) => setTimeout(r, 2));
    running -= 1;
    return outcomes[step.id] ?? { status: "succeeded" };
  };
  return { run, started, maxRunning: () => maxRunning };
}

function statuses(outcomes: ReadonlyMap<string, StepOutcome>): Record<string, string> {
  return Object.fromEntries([...outcomes].map(([id, o]) => [id, o.status]));
}

describe("InProcessExecutor", () => {
  it("never runs more steps at once than the concurrency bound", async () => {
    const plan = planOf(Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`s${i}`, []])));
    const runner = autoRunner();
    const outcomes = await new InProcessExecutor().execute(plan, runner.run, { concurrency: 3 });
    expect(runner.maxRunning()).toBe(3);
    expect(runner.started).toHaveLength(12);
    expect(Object.values(statuses(outcomes))).toEqual(Array(12).fill("succeeded"));
  });

  it("runs independent branches concurrently and a step only after its upstream steps", async () => {
    // a → b, c → d: two branches
    const plan = planOf({ a: [], c: [], b: ["a"], d: ["c"] });
    const runner = new ManualRunner();
    const done = new InProcessExecutor().execute(plan, runner.run, { concurrency: 4 });
    await runner.waitFor("a", "c");
    expect(runner.running).toEqual(["a", "c"]);
    runner.end("c");
    await runner.waitFor("d");
    // b still waits for a while d runs
    expect(runner.running).toEqual(["a", "d"]);
    runner.end("a");
    await runner.waitFor("b");
    runner.end("b");
    runner.end("d");
    expect(statuses(await done)).toEqual({
      a: "succeeded",
      c: "succeeded",
      b: "succeeded",
      d: "succeeded",
    });
  });

  it("starts ready steps in plan order", async () => {
    const plan = planOf({ r: [], x1: ["r"], x2: ["r"], y: [], x3: ["r"] });
    const runner = new ManualRunner();
    const done = new InProcessExecutor().execute(plan, runner.run, { concurrency: 1 });
    // r and y are ready first: r comes first in the plan
    await runner.waitFor("r");
    runner.end("r");
    // now x1, x2, y, x3 are ready; plan order decides, not readiness order
    for (const id of ["x1", "x2", "y", "x3"]) {
      await runner.waitFor(id);
      runner.end(id);
    }
    await done;
    expect(runner.started).toEqual(["r", "x1", "x2", "y", "x3"]);
    expect(runner.maxRunning).toBe(1);
  });

  it("skips the downstream of a failed step transitively while another branch finishes", async () => {
    // a → b → c, a → d; e → f is independent
    const plan = planOf({ a: [], e: [], b: ["a"], d: ["a"], f: ["e"], c: ["b"] });
    const boom = new Error("boom");
    const runner = autoRunner({ a: { status: "failed", error: boom } });
    const outcomes = await new InProcessExecutor().execute(plan, runner.run, { concurrency: 2 });
    expect(statuses(outcomes)).toEqual({
      a: "failed",
      e: "succeeded",
      b: "skipped",
      d: "skipped",
      f: "succeeded",
      c: "skipped",
    });
    expect([...outcomes.keys()]).toEqual(["a", "e", "b", "d", "f", "c"]);
    expect(outcomes.get("a")).toEqual({ status: "failed", error: boom });
    expect(outcomes.get("c")).toMatchObject({ reason: expect.stringContaining('"a"') });
    expect(runner.started.sort()).toEqual(["a", "e", "f"]);
  });

  it("records a runner that rejects as a failed step with the rejection as its error", async () => {
    const plan = planOf({ a: [], b: ["a"] });
    const runner = new ManualRunner();
    const done = new InProcessExecutor().execute(plan, runner.run);
    await runner.waitFor("a");
    const error = new TypeError("bookkeeping broke");
    runner.throw("a", error);
    const outcomes = await done;
    expect(outcomes.get("a")).toEqual({ status: "failed", error });
    expect(outcomes.get("b")?.status).toBe("skipped");
  });

  it("finishes at once for an empty plan", async () => {
    const outcomes = await new InProcessExecutor().execute(planOf({}), autoRunner().run);
    expect(outcomes.size).toBe(0);
  });

  describe("cancellation", () => {
    it("starts nothing once aborted, hands running steps the abort and cancels the rest", async () => {
      // a → b → c, and x running alongside a
      const plan = planOf({ a: [], x: [], b: ["a"], c: ["b"] });
      const runner = new ManualRunner();
      const abort = new AbortController();
      const done = new InProcessExecutor().execute(plan, runner.run, {
        concurrency: 2,
        signal: abort.signal,
        cancelGraceMs: 5_000,
      });
      await runner.waitFor("a", "x");
      runner.end("x");
      await new Promise((r) => setTimeout(r, 5));
      abort.abort(new Error("ctrl-c"));
      expect(runner.signals.get("a")?.aborted).toBe(true);
      expect(runner.signals.get("a")?.reason).toMatchObject({ message: "ctrl-c" });
      // a finishes its work after the abort: kept, yet b does not start
      runner.end("a");
      const outcomes = await done;
      expect(runner.started).toEqual(["a", "x"]);
      expect(statuses(outcomes)).toEqual({
        a: "succeeded",
        x: "succeeded",
        b: "canceled",
        c: "canceled",
      });
    });

    it("cancels the never-started downstream of a step that stopped for the abort", async () => {
      const plan = planOf({ a: [], b: ["a"], c: ["b"] });
      const runner = new ManualRunner();
      const abort = new AbortController();
      const done = new InProcessExecutor().execute(plan, runner.run, {
        signal: abort.signal,
        cancelGraceMs: 5_000,
      });
      await runner.waitFor("a");
      abort.abort();
      // the step honours its signal and says so
      runner.end("a", { status: "canceled", reason: "stopped by the abort" });
      const outcomes = await done;
      expect(outcomes.get("a")).toEqual({ status: "canceled", reason: "stopped by the abort" });
      // b and c never ran because the run was canceled, not because a failed
      expect(outcomes.get("b")?.status).toBe("canceled");
      expect(outcomes.get("c")?.status).toBe("canceled");
    });

    it("marks a step that ignores the abort canceled after the grace period", async () => {
      const plan = planOf({ stubborn: [], after: ["stubborn"] });
      const runner = new ManualRunner();
      const abort = new AbortController();
      const done = new InProcessExecutor().execute(plan, runner.run, {
        signal: abort.signal,
        cancelGraceMs: 50,
      });
      await runner.waitFor("stubborn");
      // The grace is measured on a fake clock: the run ends when 50 ms have passed on it, not
      // before, however slow the machine is.
      vi.useFakeTimers();
      let outcomes: ReadonlyMap<string, StepOutcome> | undefined;
      try {
        void done.then((o) => {
          outcomes = o;
        });
        abort.abort();
        await vi.advanceTimersByTimeAsync(49);
        expect(outcomes, "ended before the grace period was over").toBeUndefined();
        await vi.advanceTimersByTimeAsync(1);
        expect(outcomes, "still waiting after the grace period").toBeDefined();
      } finally {
        vi.useRealTimers();
      }
      expect(outcomes!.get("stubborn")).toMatchObject({
        status: "canceled",
        reason: "the run was canceled while this step was running",
      });
      expect(outcomes!.get("after")).toMatchObject({
        status: "canceled",
        reason: "the run was canceled before it started",
      });
      // the step ending late changes nothing
      runner.end("stubborn");
      await new Promise((r) => setTimeout(r, 5));
      expect(outcomes!.get("stubborn")?.status).toBe("canceled");
    });

    it("keeps the process alive through the grace period to report the stuck step", () => {
      // a step stuck on a promise that holds no handle: only the grace timer keeps the process
      // alive until the run's outcome is known (and recorded, in a real run)
      const executor = fileURLToPath(new URL("../../src/materialize/executor.ts", import.meta.url));
      const script = `
        const { InProcessExecutor } = await import(${JSON.stringify(executor)});
        const step = { id: "a", assetKey: "a", partitionKey: null, codeVersion: null, inputs: [], upstreamSteps: [] };
        const abort = new AbortController();
        const outcomes = await new InProcessExecutor().execute(
          { selection: "*", partitionKeys: [], steps: [step] },
          async () => { abort.abort(); return new Promise(() => {}); },
          { signal: abort.signal, cancelGraceMs: 50 },
        );
        console.log(outcomes.get("a").status);
      `;
      const child = spawnSync(
        process.execPath,
        ["--import", "tsx", "--input-type=module", "-e", script],
        { encoding: "utf8", timeout: 20_000 },
      );
      expect({ status: child.status, stdout: child.stdout.trim() }).toEqual({
        status: 0,
        stdout: "canceled",
      });
    });

    it("runs nothing when the signal is already aborted", async () => {
      const plan = planOf({ a: [], b: ["a"] });
      const runner = autoRunner();
      const outcomes = await new InProcessExecutor().execute(plan, runner.run, {
        signal: AbortSignal.abort(),
      });
      expect(runner.started).toEqual([]);
      expect(statuses(outcomes)).toEqual({ a: "canceled", b: "canceled" });
    });
  });
});
