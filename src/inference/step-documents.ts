import type { ChatMessage, InferSpec } from "../assets/asset-context.js";
import { StrataError } from "../errors.js";
import { errorMessage } from "../util/error-message.js";
import { buildRequest } from "./inference-request.js";
import type { ResolvedModel } from "./inference-runtime.js";

/**
 * One document of a step. Its messages are not kept: they are built again from the item when the
 * document is sent, so a step holds the messages of its in-flight documents only (a prompt that
 * embeds the document's text is a second copy of that text once it has been serialized).
 */
export interface StepDocument<I> {
  readonly index: number;
  readonly item: I;
  readonly id: string;
  /** The request hash per model of the chain, computed from the messages when checked. */
  readonly hashes: ReadonlyArray<string>;
}

/**
 * Checks what a step passed `ctx.infer`: an array of documents and a spec with `id` and
 * `messages` functions and a whole `maxFailures`.
 *
 * @example
 * checkSpec("analyses", items, spec); // throws bad_value or bad_usage naming the asset
 */
export function checkSpec<I, O>(
  assetKey: string,
  items: ReadonlyArray<I>,
  spec: InferSpec<I, O>,
): void {
  if (!Array.isArray(items)) {
    throw new StrataError(
      "bad_value",
      `asset "${assetKey}" passed ctx.infer something that is not an array of documents`,
    );
  }
  if (spec === null || typeof spec !== "object") {
    throw new StrataError(
      "bad_usage",
      `asset "${assetKey}" called ctx.infer without a spec { model, id, messages }`,
    );
  }
  for (const name of ["id", "messages"] as const) {
    if (typeof spec[name] !== "function") {
      throw new StrataError(
        "bad_usage",
        `asset "${assetKey}" called ctx.infer without a "${name}" function`,
      );
    }
  }
  if (
    spec.maxFailures !== undefined &&
    (!Number.isInteger(spec.maxFailures) || spec.maxFailures < 0)
  ) {
    throw new StrataError(
      "bad_usage",
      `asset "${assetKey}" set maxFailures to ${spec.maxFailures}; use a whole number ≥ 0`,
    );
  }
}

/**
 * Checks every document before anything is sent (a unique string id, at least one message) and
 * computes its request hash for each model of the chain; the messages themselves are dropped.
 *
 * @example
 * const documents = stepDocuments("analyses", items, spec, chain, requestParams(spec.params));
 */
export function stepDocuments<I, O>(
  assetKey: string,
  items: ReadonlyArray<I>,
  spec: InferSpec<I, O>,
  chain: ReadonlyArray<ResolvedModel>,
  params: Readonly<Record<string, unknown>>,
): ReadonlyArray<StepDocument<I>> {
  const seen = new Set<string>();
  return items.map((item, index) => {
    const id = spec.id(item);
    if (typeof id !== "string" || id === "") {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": document ${index} has ${id === "" ? "an empty" : "no string"} id; id() must return a non-empty string`,
      );
    }
    if (seen.has(id)) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": document id "${id}" appears twice; ids must be unique within one step (the checkpoint is per document)`,
      );
    }
    seen.add(id);
    let messages: ReadonlyArray<ChatMessage>;
    try {
      messages = spec.messages(item);
    } catch (error) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": messages() of document "${id}" threw: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": messages() for document "${id}" returned no messages; return [{ role: "user", content: "..." }]`,
      );
    }
    let hashes: string[];
    try {
      hashes = chain.map((model) => buildRequest(model.name, messages, params).hash);
    } catch (error) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}": messages() of document "${id}" returned messages that cannot be sent as JSON: ${errorMessage(error)}`,
        { cause: error },
      );
    }
    return { index, item, id, hashes };
  });
}
