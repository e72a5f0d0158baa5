/** A plain row object: what `compute` returns an array of, and what downstream assets receive. */
export type Row = Record<string, unknown>;

/** Writes a step's log lines to stderr, prefixed with its asset key. */
export interface AssetLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** One chat message, as the OpenAI chat completions API takes it. */
export interface ChatMessage {
  readonly role: "system" | "user" | "assistant" | "developer";
  readonly content: string;
}

/**
 * How `ctx.infer` turns documents into chat completion calls.
 *
 * @example
 * ctx.infer(docs, { model: "small", id: (d) => d.id, messages: (d) => [{ role: "user", content: d.text }] });
 */
export interface InferSpec<I, O = string> {
  /** A key of the project's `models`. */
  readonly model: string;
  /** Model keys tried in order when the model fails for good on a document. */
  readonly fallback?: ReadonlyArray<string>;
  /** The document id: lineage, checkpoint and cost rows use it; unique within one step. */
  readonly id: (item: I) => string;
  /**
   * The chat messages of a document. Called when the step checks its documents (the request
   * hash, before anything is sent) and again when the document is sent, so that only documents
   * in flight hold their messages; it must return the same messages for the same item.
   */
  readonly messages: (item: I) => ReadonlyArray<ChatMessage>;
  /** Passed to `chat.completions.create` (max_tokens, temperature, response_format, ...). */
  readonly params?: Readonly<Record<string, unknown>>;
  /** Turns the message text into the output value; a throw fails that document. */
  readonly parse?: (text: string, item: I) => O;
  /** Documents allowed to fail before the step fails (default 0). */
  readonly maxFailures?: number;
}

/** One document's outcome of `ctx.infer`, in input order. */
export interface InferResultRow<O = string> {
  id: string;
  output: O | null;
  /** The model key that answered (the fallback's, when one did). */
  model: string | null;
  status: "succeeded" | "failed";
  error: string | null;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  /** Exact decimal, as a string: money is never a float. */
  cost_usd: string;
}

/**
 * What a step's `compute` receives as its first argument.
 *
 * @example
 * compute: async (ctx) => { ctx.log.info(`building ${ctx.assetKey}`); return []; }
 */
export interface AssetContext {
  readonly runId: string;
  readonly assetKey: string;
  /** The partition being built, or null for an unpartitioned asset. */
  readonly partitionKey: string | null;
  readonly log: AssetLogger;
  /** Aborted when the run is canceled; pass it on to long-running work. */
  readonly signal: AbortSignal;
  /** Attaches metadata to this materialization (merged over earlier calls). */
  metadata(values: Readonly<Record<string, unknown>>): void;
  /** Fans documents out to a model; one result row per document, in input order. */
  infer<I, O = string>(
    items: ReadonlyArray<I>,
    spec: InferSpec<I, O>,
  ): Promise<InferResultRow<O>[]>;
}
