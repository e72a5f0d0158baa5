import { createLogUpdate } from "log-update";
import type { InferenceProgress } from "../inference/inference-runtime.js";
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
  readonly #inference = new Map<string, InferenceProgress>();
  #total = 0;
  #finished = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

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
        this.#inference.delete(event.step.id);
        this.#finished += 1;
        this.#line(describeResult(event.result));
        break;
      }
    }
    this.#render();
  }

  /** Updates the progress bar of an inference step. */
  onInference(progress: InferenceProgress): void {
    if (this.#live === undefined) return;
    this.#inference.set(progress.stepId, progress);
  }

  /** Prints a log line above the live lines. */
  log(line: string): void {
    this.#line(line);
  }

  /** Removes the live lines for good; call before printing the summary or exiting. */
  done(): void {
    if (this.#closed) return;
    this.#closed = true;
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
    if (this.#live === undefined || this.#closed) return;
    const now = Date.now();
    const lines = [...this.#running.values()].map(({ step, startedAt }) => {
      const elapsed = now - startedAt;
      const inference = this.#inference.get(step.id);
      return inference === undefined
        ? `  ⠿ ${step.id} running ${(elapsed / 1000).toFixed(1)}s`
        : `  ⠿ ${step.id} ${inferenceBar(inference, elapsed)}`;
    });
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

const BAR_WIDTH = 24;

/** `████░░░░ 1,234/10,000 failed 3 cached 100 tokens 1.2M $0.42 95/s ETA 1 min 30 s` */
function inferenceBar(p: InferenceProgress, elapsedMs: number): string {
  const share = p.total === 0 ? 1 : p.done / p.total;
  const filled = Math.round(share * BAR_WIDTH);
  const rate = elapsedMs > 0 ? (p.done * 1000) / elapsedMs : 0;
  const eta = rate > 0 ? formatDuration(((p.total - p.done) / rate) * 1000) : "?";
  const tokens = p.promptTokens + p.completionTokens;
  return [
    `${"█".repeat(filled)}${"░".repeat(BAR_WIDTH - filled)}`,
    `${p.done.toLocaleString("en-US")}/${p.total.toLocaleString("en-US")}`,
    `failed ${p.failed}`,
    `cached ${p.cacheHits}`,
    `tokens ${compact(tokens)}`,
    `$${p.costUsd}`,
    `${rate.toFixed(0)}/s`,
    `ETA ${eta}`,
  ].join(" ");
}

function compact(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** `850 ms`, `12.3 s`, `4 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1_000)} s`;
}
