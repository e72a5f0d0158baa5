import type { RunStatus } from "../store/database.js";
import type { MaterializationPlan, PlanStep } from "./materialization-plan.js";

// What a run reports: each step's outcome and the run's, as the façade returns them, the CLI
// prints them and `runs show` reads them back.

/** Statuses a step ends with. */
export type StepStatus = "succeeded" | "failed" | "skipped" | "canceled";

/** One step's outcome as the run summary, `runs show` and `--json` report it. */
export interface StepResult {
  readonly id: string;
  readonly materializationId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly status: StepStatus;
  readonly rows: number | null;
  readonly durationMs: number | null;
  readonly error: string | null;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  readonly completionTokens: number;
  /** Exact decimal. */
  readonly costUsd: string;
}

/** How a run ended. */
export interface RunResult {
  readonly runId: string;
  readonly status: Exclude<RunStatus, "running">;
  readonly error: string | null;
  readonly steps: ReadonlyArray<StepResult>;
}

/** Progress of a run, for live output. */
export type RunEvent =
  | { readonly type: "run_started"; readonly runId: string; readonly plan: MaterializationPlan }
  | { readonly type: "step_started"; readonly step: PlanStep }
  | { readonly type: "step_finished"; readonly step: PlanStep; readonly result: StepResult };

/** A step's tokens and cost when it spent nothing. */
export const ZERO_COST = {
  promptTokens: 0,
  cachedTokens: 0,
  completionTokens: 0,
  costUsd: "0",
} as const;

/**
 * The run's error line: what was canceled, how many steps failed (naming the first), skipped
 * and canceled.
 *
 * @example
 * summarizeFailure(steps, "failed"); // '1 step failed (first: "analyses": ...); 1 skipped'
 */
export function summarizeFailure(steps: ReadonlyArray<StepResult>, status: string): string {
  const failed = steps.filter((s) => s.status === "failed");
  const skipped = steps.filter((s) => s.status === "skipped").length;
  const canceled = steps.filter((s) => s.status === "canceled").length;
  const parts: string[] = [];
  if (status === "canceled") parts.push("the run was canceled");
  if (failed.length > 0) {
    const first = failed[0]!;
    parts.push(
      `${failed.length} step${failed.length === 1 ? "" : "s"} failed (first: "${first.id}": ${first.error})`,
    );
  }
  if (skipped > 0) parts.push(`${skipped} skipped`);
  if (canceled > 0 && status !== "canceled") parts.push(`${canceled} canceled`);
  return parts.join("; ");
}
