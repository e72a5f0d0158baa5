import { setMaxListeners } from "node:events";
import { MinHeap } from "../util/min-heap.js";
import type { MaterializationPlan, PlanStep } from "./materialization-plan.js";

/** How one step ended. */
export type StepOutcome =
  | { readonly status: "succeeded" }
  | { readonly status: "failed"; readonly error: unknown }
  /** Not run because an upstream step did not succeed. */
  | { readonly status: "skipped"; readonly reason: string }
  /** Not run, or stopped, because the run was canceled. */
  | { readonly status: "canceled"; readonly reason: string };

/** Runs one step and says how it ended; the executor never sees what a step computes. */
export type StepRunner = (step: PlanStep, signal: AbortSignal) => Promise<StepOutcome>;

/** Options of {@link Executor.execute}. */
export interface ExecuteOptions {
  /** Steps running at once (default {@link DEFAULT_STEP_CONCURRENCY}). */
  readonly concurrency?: number;
  /** Aborting it cancels the run: no step starts after, running steps get a grace period. */
  readonly signal?: AbortSignal;
  /** How long running steps may take to end after a cancel (default 5 s). */
  readonly cancelGraceMs?: number;
}

/**
 * Schedules the steps of a plan. Today steps run in this process; the interface is what a
 * queue-backed executor on other machines implements too.
 */
export interface Executor {
  /** Runs the plan and returns every step's outcome, in plan order. */
  execute(
    plan: MaterializationPlan,
    runStep: StepRunner,
    options?: ExecuteOptions,
  ): Promise<ReadonlyMap<string, StepOutcome>>;
}

/** Assets built at once by default. */
export const DEFAULT_STEP_CONCURRENCY = 4;

const DEFAULT_CANCEL_GRACE_MS = 5_000;

/**
 * Runs each step in this process as soon as its upstream steps succeeded, independent branches
 * concurrently up to a bound. A failed step's downstream steps are skipped; other branches go
 * on.
 *
 * @example
 * const outcomes = await new InProcessExecutor().execute(plan, runStep, { concurrency: 4 });
 */
export class InProcessExecutor implements Executor {
  execute(
    plan: MaterializationPlan,
    runStep: StepRunner,
    options: ExecuteOptions = {},
  ): Promise<ReadonlyMap<string, StepOutcome>> {
    const concurrency = Math.max(1, options.concurrency ?? DEFAULT_STEP_CONCURRENCY);
    const signal = options.signal;
    const steps = plan.steps;
    const indexOf = new Map(steps.map((s, i) => [s.id, i]));
    const waitingOn = steps.map((s) => s.upstreamSteps.length);
    const downstream: number[][] = steps.map(() => []);
    steps.forEach((s, i) => {
      for (const up of s.upstreamSteps) downstream[indexOf.get(up)!]!.push(i);
    });
    const outcomes = new Map<string, StepOutcome>();
    // Ready steps start in plan (topological, then key) order.
    const ready = new MinHeap<number>((a, b) => a - b);
    steps.forEach((_, i) => {
      if (waitingOn[i] === 0) ready.push(i);
    });
    const running = new Map<number, AbortController>();

    return new Promise((resolve) => {
      let done = false;
      let graceTimer: NodeJS.Timeout | undefined;

      const finish = () => {
        if (done) return;
        done = true;
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        signal?.removeEventListener("abort", onAbort);
        for (const step of steps) {
          if (!outcomes.has(step.id)) {
            outcomes.set(step.id, {
              status: "canceled",
              reason: "the run was canceled before it started",
            });
          }
        }
        resolve(new Map(steps.map((s) => [s.id, outcomes.get(s.id)!])));
      };

      const skipDownstream = (from: number) => {
        const stack = [...downstream[from]!];
        const reason = `upstream step "${steps[from]!.id}" did not succeed`;
        while (stack.length > 0) {
          const i = stack.pop()!;
          const id = steps[i]!.id;
          if (outcomes.has(id)) continue;
          outcomes.set(id, { status: "skipped", reason });
          stack.push(...downstream[i]!);
        }
      };

      const settle = (i: number, outcome: StepOutcome) => {
        if (done || !running.has(i)) return;
        running.delete(i);
        outcomes.set(steps[i]!.id, outcome);
        if (outcome.status === "succeeded") {
          for (const child of downstream[i]!) {
            waitingOn[child]! -= 1;
            if (waitingOn[child] === 0 && !outcomes.has(steps[child]!.id)) ready.push(child);
          }
        } else if (!signal?.aborted) {
          // After a cancel, what this step would have fed is canceled by finish(), not skipped.
          skipDownstream(i);
        }
        pump();
      };

      const pump = () => {
        while (!signal?.aborted && running.size < concurrency && ready.size > 0) {
          const i = ready.pop();
          const step = steps[i]!;
          if (outcomes.has(step.id)) continue;
          const controller = new AbortController();
          // Each of a step's in-flight inference calls listens on it: thousands are expected.
          setMaxListeners(0, controller.signal);
          running.set(i, controller);
          runStep(step, controller.signal).then(
            (outcome) => settle(i, outcome),
            (error: unknown) => settle(i, { status: "failed", error }),
          );
        }
        if (running.size === 0 && (ready.size === 0 || signal?.aborted)) finish();
      };

      const onAbort = () => {
        for (const controller of running.values()) controller.abort(signal?.reason);
        graceTimer = setTimeout(() => {
          for (const i of running.keys()) {
            outcomes.set(steps[i]!.id, {
              status: "canceled",
              reason: "the run was canceled while this step was running",
            });
          }
          running.clear();
          finish();
        }, options.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS);
        if (running.size === 0) finish();
      };

      if (signal?.aborted) {
        finish();
        return;
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      pump();
    });
  }
}
