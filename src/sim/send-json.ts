import type { ServerResponse } from "node:http";
import type { SimHttpError } from "./sim-http-error.js";

/** Headers on every simulator response, so no one mistakes it for a real provider. */
const SIM_HEADERS = { server: "strata-sim", "x-strata-simulated": "true" } as const;

/**
 * Sends `body` (a value, or an already serialized JSON string) with `status` and `headers`.
 *
 * Does nothing when the client is gone or the response was already sent.
 *
 * @example
 * sendJson(res, 200, { ok: true });
 */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, {
    ...SIM_HEADERS,
    ...headers,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * Sends a {@link SimHttpError} as OpenAI sends errors: its status, headers and error body.
 *
 * @example
 * sendError(res, new SimHttpError(404, "Not found."));
 */
export function sendError(
  res: ServerResponse,
  error: SimHttpError,
  headers?: Readonly<Record<string, string>>,
): void {
  sendJson(res, error.status, error.body(), { ...headers, ...error.headers });
}

/**
 * Opens a server-sent events response (the headers of a streamed completion).
 *
 * @example
 * startEventStream(res, { "x-request-id": "req_1" });
 * res.write("data: [DONE]\n\n");
 */
export function startEventStream(
  res: ServerResponse,
  headers?: Readonly<Record<string, string>>,
): void {
  res.writeHead(200, {
    ...SIM_HEADERS,
    ...headers,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
  });
}
