import { SimHttpError } from "./sim-http-error.js";
import type { SimChatMessage } from "./sim-tokenizer.js";

/** The most choices one request may ask for (`n`), as OpenAI allows. */
const MAX_CHOICES = 128;

/**
 * A validated `POST /v1/chat/completions` body: the fields the simulator acts on.
 *
 * @example
 * const request: ChatRequest = parseChatRequest('{"model":"m","messages":[{"role":"user","content":"hi"}]}');
 */
export interface ChatRequest {
  readonly model: string;
  readonly messages: ReadonlyArray<SimChatMessage>;
  readonly stream: boolean;
  /** `stream_options.include_usage`: a last chunk with the usage and no choices. */
  readonly includeUsage: boolean;
  /** `max_completion_tokens`, or the older `max_tokens`; undefined when neither is given. */
  readonly maxTokens: number | undefined;
  /** How many choices to generate. */
  readonly n: number;
}

/**
 * Parses and validates a chat completion request body, throwing a 400 {@link SimHttpError}
 * worded as OpenAI words it when the JSON or a field is wrong.
 *
 * @example
 * parseChatRequest('{"model":"m","messages":[{"role":"user","content":"hi"}]}').model; // "m"
 */
export function parseChatRequest(body: string): ChatRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new SimHttpError(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't " +
        "using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
    );
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SimHttpError(400, "The request body must be a JSON object.");
  }
  const fields = parsed as Record<string, unknown>;

  if (fields.model === undefined) throw missing("model");
  if (typeof fields.model !== "string" || fields.model.length === 0)
    throw invalid("model", "a string");

  if (fields.messages === undefined) throw missing("messages");
  if (!Array.isArray(fields.messages)) throw invalid("messages", "an array");
  if (fields.messages.length === 0) {
    throw new SimHttpError(
      400,
      "Invalid 'messages': empty array. Expected an array with minimum length 1.",
      {
        code: "empty_array",
        param: "messages",
      },
    );
  }
  fields.messages.forEach((message: unknown, index: number) => {
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      throw invalid(`messages[${index}]`, "an object");
    }
    if (typeof (message as { role?: unknown }).role !== "string") {
      throw missing(`messages[${index}].role`);
    }
  });

  const stream = optionalBoolean(fields, "stream") ?? false;
  let includeUsage = false;
  if (fields.stream_options !== undefined && fields.stream_options !== null) {
    if (typeof fields.stream_options !== "object") throw invalid("stream_options", "an object");
    includeUsage =
      optionalBoolean(fields.stream_options as Record<string, unknown>, "include_usage") ?? false;
  }

  const maxTokens =
    positiveInteger(fields, "max_completion_tokens") ?? positiveInteger(fields, "max_tokens");
  const n = positiveInteger(fields, "n") ?? 1;
  if (n > MAX_CHOICES) throw invalid("n", `an integer between 1 and ${MAX_CHOICES}`);

  return {
    model: fields.model,
    messages: fields.messages as ReadonlyArray<SimChatMessage>,
    stream,
    includeUsage,
    maxTokens,
    n,
  };
}

function missing(param: string): SimHttpError {
  return new SimHttpError(400, `Missing required parameter: '${param}'.`, {
    code: "missing_required_parameter",
    param,
  });
}

function invalid(param: string, expected: string): SimHttpError {
  return new SimHttpError(400, `Invalid type for '${param}': expected ${expected}.`, {
    code: "invalid_type",
    param,
  });
}

function optionalBoolean(fields: Record<string, unknown>, name: string): boolean | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw invalid(name, "a boolean");
  return value;
}

function positiveInteger(fields: Record<string, unknown>, name: string): number | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new SimHttpError(400, `Invalid '${name}': expected an integer of at least 1.`, {
      code: "invalid_value",
      param: name,
    });
  }
  return value;
}
