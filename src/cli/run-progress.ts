import { createLogUpdate } from "log-update";
import type { PlanStep } from "../materialize/materialization-plan.js";
import type { RunEvent, StepResult } from "../materialize/materialize.js";

type Stream = NodeJS.WritableStream & { isTTY?: boolean };

const SYMBOL: Record<StepResult["status"], string> = {
  succeeded: "✓",
  failed: "✗",
  skipped: "-",
  canceled: "○",
};

/**
 * Shows a run as it happens on stderr: on a terminal, one live line per running step; otherwise
 * one line per finished step. `ctx.log` lines go through it so they never tear the live lines.
 */
export class RunProgress {
  readonly #stream: Stream;
  readonly #live: ReturnType<typeof createLogUpdate> | undefined;
  readonly #running = new Map<string, { step: PlanStep; startedAt: number }>();
  #total = 0;
  #finished = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(stream: Stream, options: { readonly quiet?: boolean } = {}) {
    this.#stream = stream;
    this.#live =
      stream.isTTY === true && options.quiet !== true ? createLogUpdate(stream) : undefined;
  }

  onEvent(event: RunEvent): void {
    switch (event.type) {
      case "run_started":
        this.#total = event.plan.steps.length;
        if (this.#live !== undefined) {
          this.#timer = setInterval(() => this.#render(), 200);
          this.#timer.unref();
        }
        break;
      case "step_started":
        this.#running.set(event.step.id, { step: event.step, startedAt: Date.now() });
        break;
      case "step_finished": {
        this.#running.delete(event.step.id);
        this.#finished += 1;
        this.#line(describeResult(event.result));
        break;
      }
    }
    this.#render();
  }

  /** Prints a log line above the live lines. */
  log(line: string): void {
    this.#line(line);
  }

  /** Removes the live lines; call before printing the summary. */
  done(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#live?.clear();
    this.#live?.done();
  }

  #line(text: string): void {
    this.#live?.clear();
    this.#stream.write(`${text}\n`);
    this.#render();
  }

  #render(): void {
    if (this.#live === undefined) return;
    const now = Date.now();
    const lines = [...this.#running.values()].map(
      ({ step, startedAt }) => `  ⠿ ${step.id} running ${((now - startedAt) / 1000).toFixed(1)}s`,
    );
    lines.push(`  ${this.#finished}/${this.#total} steps done`);
    this.#live(lines.join("\n"));
  }
}

function describeResult(r: StepResult): string {
  const details: string[] = [];
  if (r.rows !== null) details.push(`${r.rows} rows`);
  if (r.durationMs !== null) details.push(formatDuration(r.durationMs));
  if (r.status !== "succeeded" && r.error !== null) details.push(r.error);
  return `${SYMBOL[r.status]} ${r.id} ${r.status}${details.length > 0 ? ` (${details.join(", ")})` : ""}`;
}

/** `850 ms`, `12.3 s`, `4 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1_000)} s`;
}
