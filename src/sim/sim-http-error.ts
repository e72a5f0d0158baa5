import type { RateLimitDecision } from "./rate-limiter.js";
import { formatResetDuration } from "./rate-limiter.js";

/**
 * The error body every OpenAI-compatible server sends, which the `openai` client turns into its
 * `APIError` subclasses (`code`, `type` and `param` are read from here).
 *
 * @example
 * const body: OpenAIErrorBody = { error: { message: "...", type: "server_error", param: null, code: null } };
 */
export interface OpenAIErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
    readonly code: string | null;
  };
}

/**
 * An HTTP error answer of the simulator: a status, the OpenAI error fields and extra headers.
 *
 * Validation throws these; the server turns them into responses with {@link SimHttpError.body}.
 *
 * @example
 * throw new SimHttpError(400, "Missing required parameter: 'messages'.", {
 *   type: "invalid_request_error", code: "missing_required_parameter", param: "messages",
 * });
 */
export class SimHttpError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    message: string,
    fields: {
      type?: string;
      code?: string | null;
      param?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.name = "SimHttpError";
    this.status = status;
    this.type = fields.type ?? "invalid_request_error";
    this.code = fields.code ?? null;
    this.param = fields.param ?? null;
    this.headers = Object.freeze({ ...fields.headers });
  }

  /** 401 `invalid_api_key`: no key, or (when `sent`) the wrong one. */
  static unauthorized(sent: boolean): SimHttpError {
    const message = sent
      ? "Incorrect API key provided. (simulated)"
      : "You didn't provide an API key. You need to provide your API key in an Authorization " +
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). (simulated)";
    return new SimHttpError(401, message, { code: "invalid_api_key" });
  }

  /** 404 `model_not_found`, naming the models that are served. */
  static modelNotFound(model: string, served: ReadonlyArray<string>): SimHttpError {
    return new SimHttpError(
      404,
      `The model \`${model}\` does not exist or you do not have access to it. ` +
        `(simulated; this simulator serves: ${served.join(", ")})`,
      { code: "model_not_found", param: "model" },
    );
  }

  /** 429 `insufficient_quota`: retrying does not help (the `openai` client's `RateLimitError`). */
  static quotaExhausted(): SimHttpError {
    return new SimHttpError(
      429,
      "You exceeded your current quota, please check your plan and billing details. (simulated)",
      { type: "insufficient_quota", code: "insufficient_quota" },
    );
  }

  /** 429 `rate_limit_exceeded` with `retry-after` (seconds) and `retry-after-ms`. */
  static rateLimited(model: string, decision: RateLimitDecision): SimHttpError {
    const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
    return new SimHttpError(
      429,
      `Rate limit reached for ${model} on requests per min (RPM): Limit ${decision.limit}, ` +
        `Used ${decision.limit}, Requested 1. Please try again in ` +
        `${formatResetDuration(decision.retryAfterMs)}. (simulated)`,
      {
        type: "requests",
        code: "rate_limit_exceeded",
        headers: {
          "retry-after": String(seconds),
          "retry-after-ms": String(decision.retryAfterMs),
        },
      },
    );
  }

  /** 400 `context_length_exceeded`, worded as OpenAI words it. */
  static contextLengthExceeded(contextWindow: number, promptTokens: number): SimHttpError {
    return new SimHttpError(
      400,
      `This model's maximum context length is ${contextWindow} tokens. However, your messages ` +
        `resulted in ${promptTokens} tokens. Please reduce the length of the messages. (simulated)`,
      { code: "context_length_exceeded", param: "messages" },
    );
  }

  /** 500 `server_error`, the injected fault of `errorRate`. */
  static serverError(): SimHttpError {
    return new SimHttpError(
      500,
      "The server had an error while processing your request. Sorry about that! (simulated)",
      { type: "server_error" },
    );
  }

  /** 404 for a path the simulator does not serve. */
  static unknownUrl(method: string, path: string): SimHttpError {
    return new SimHttpError(404, `Unknown request URL: ${method} ${path}. (simulated)`, {
      code: "unknown_url",
    });
  }

  /** 405 for a served path asked with the wrong method. */
  static methodNotAllowed(allowed: string): SimHttpError {
    return new SimHttpError(405, `Method not allowed; use ${allowed}. (simulated)`);
  }

  /** 413 for a body over the `maxBodyBytes` option. */
  static bodyTooLarge(limit: number): SimHttpError {
    return new SimHttpError(413, `Request body is larger than ${limit} bytes. (simulated)`);
  }

  /** The JSON body to send. */
  body(): OpenAIErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}
