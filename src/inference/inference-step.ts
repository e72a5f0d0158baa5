import type { InferResultRow, InferSpec } from "../assets/asset-context.js";

/** Which step an inference call belongs to, and the signal that cancels it. */
export interface InferenceStep {
  readonly runId: string;
  readonly stepId: string;
  readonly materializationId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly signal: AbortSignal;
}

/** Fans documents out to models for one step; provided by the inference layer. */
export interface StepInference {
  infer<I, O>(items: ReadonlyArray<I>, spec: InferSpec<I, O>): Promise<InferResultRow<O>[]>;
}
