import type {
  AssetContext,
  AssetLogger,
  InferResultRow,
  InferSpec,
} from "../assets/asset-context.js";
import { StrataError } from "../errors.js";
import type { InferenceStep, StepInference } from "../inference/inference-step.js";
import { oneLineMessage } from "../util/error-message.js";
import { toJsonText } from "../values/json-text.js";

export type { InferenceStep, StepInference };

/** Where `ctx.log` lines go: the CLI prints them to stderr prefixed with the asset key. */
export type LogSink = (
  assetKey: string,
  partitionKey: string | null,
  level: "debug" | "info" | "warn" | "error",
  message: string,
) => void;

/** What a step's context needs to know. */
export interface StepContextOptions {
  readonly runId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly signal: AbortSignal;
  readonly log: LogSink;
  readonly inference: StepInference | undefined;
}

/**
 * The `ctx` a step's `compute` receives, collecting the metadata the step attaches.
 *
 * @example
 * const ctx = new StepContext({ runId, assetKey: "a", partitionKey: null, signal, log, inference });
 */
export class StepContext implements AssetContext {
  readonly runId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly signal: AbortSignal;
  readonly log: AssetLogger;
  readonly #inference: StepInference | undefined;
  #metadata: Record<string, unknown> = {};

  constructor(options: StepContextOptions) {
    this.runId = options.runId;
    this.assetKey = options.assetKey;
    this.partitionKey = options.partitionKey;
    this.signal = options.signal;
    this.#inference = options.inference;
    const sink = options.log;
    const at =
      (level: "debug" | "info" | "warn" | "error") =>
      (message: string): void =>
        sink(this.assetKey, this.partitionKey, level, String(message));
    this.log = Object.freeze({
      debug: at("debug"),
      info: at("info"),
      warn: at("warn"),
      error: at("error"),
    });
  }

  /** The metadata attached so far. */
  get attachedMetadata(): Readonly<Record<string, unknown>> {
    return this.#metadata;
  }

  metadata(values: Readonly<Record<string, unknown>>): void {
    if (values === null || typeof values !== "object" || Array.isArray(values)) {
      throw new StrataError(
        "bad_value",
        `asset "${this.assetKey}" passed ${Array.isArray(values) ? "an array" : String(values)} to ctx.metadata(); pass an object such as { source: "s3://..." }`,
      );
    }
    try {
      toJsonText(values);
    } catch (error) {
      throw new StrataError(
        "bad_value",
        `asset "${this.assetKey}" attached metadata that is not JSON-serializable: ${oneLineMessage(error)}`,
        { cause: error },
      );
    }
    this.#metadata = { ...this.#metadata, ...values };
  }

  infer<I, O = string>(
    items: ReadonlyArray<I>,
    spec: InferSpec<I, O>,
  ): Promise<InferResultRow<O>[]> {
    if (this.#inference === undefined) {
      return Promise.reject(
        new StrataError(
          "unknown_model",
          `asset "${this.assetKey}" called ctx.infer, but no inference runtime is configured for this run`,
        ),
      );
    }
    return this.#inference.infer(items, spec);
  }
}
