import type { InferResultRow } from "../assets/asset-context.js";
import { type Femtos, fromFemtos } from "../util/decimal.js";
import type { InferenceProgress } from "./inference-runtime.js";

/** Least time between two progress reports of a step, unless forced. */
const PROGRESS_INTERVAL_MS = 100;

/**
 * A step's counters, for progress and its summary: documents done and failed, cache hits,
 * tokens, and the exact cost (femto-dollars, added per document, never re-summed), reported as
 * {@link InferenceProgress} at most every 100 ms.
 *
 * @example
 * const tally = new StepTally(runtime.onProgress, step.stepId, documents.length);
 * tally.add(row, cost); tally.report();
 */
export class StepTally {
  done = 0;
  failed = 0;
  cacheHits = 0;
  promptTokens = 0;
  completionTokens = 0;
  cost: Femtos = 0n;
  readonly #onProgress: ((progress: InferenceProgress) => void) | undefined;
  readonly #stepId: string;
  readonly #total: number;
  #lastReport = 0;

  constructor(
    onProgress: ((progress: InferenceProgress) => void) | undefined,
    stepId: string,
    total: number,
  ) {
    this.#onProgress = onProgress;
    this.#stepId = stepId;
    this.#total = total;
  }

  /** Counts a document's row, which cost `cost`. */
  add(row: InferResultRow<unknown>, cost: Femtos): void {
    this.done += 1;
    if (row.status === "failed") this.failed += 1;
    this.promptTokens += row.prompt_tokens;
    this.completionTokens += row.completion_tokens;
    this.cost += cost;
  }

  /** Reports progress, unless the last report was under 100 ms ago and `force` is false. */
  report(force = false): void {
    if (this.#onProgress === undefined) return;
    const now = Date.now();
    if (!force && now - this.#lastReport < PROGRESS_INTERVAL_MS) return;
    this.#lastReport = now;
    this.#onProgress({
      stepId: this.#stepId,
      total: this.#total,
      done: this.done,
      failed: this.failed,
      cacheHits: this.cacheHits,
      promptTokens: this.promptTokens,
      completionTokens: this.completionTokens,
      costUsd: fromFemtos(this.cost),
    });
  }
}
