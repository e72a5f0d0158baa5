import { Agent, type IncomingMessage, request } from "node:http";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";

/** The `fetch` signature the `openai` client takes as its `fetch` option. */
export type FetchFunction = (
  input: string | URL | Request,
  init?: RequestInit,
) => Promise<Response>;

/**
 * A lean `fetch` for plain-HTTP endpoints (a vLLM or SGLang server, `strata sim`), made on
 * `node:http` with one keep-alive agent per endpoint; anything else (https, a `Request` object,
 * a body that is not a string) goes to the global `fetch`.
 *
 * Node's global `fetch` allocates about 150 KB per chat completion call (a clone of the request,
 * a tee of its body, web streams, sorted header lists), and with hundreds of calls in flight much
 * of it lives long enough to reach the old generation: a 100,000-document step grew its heap past
 * 1 GiB of garbage. This transport writes the body as it is and reads the reply once into a
 * buffer, which is what a non-streaming completion needs (a streamed reply arrives whole, then
 * streams from memory). It answers with a real `Response`, so the client sees no difference:
 * gzip, deflate and br bodies are decoded, an abort rejects with the signal's reason (how the
 * client tells a timeout), a refused connection rejects with the socket's error (ECONNREFUSED).
 * Redirects are not followed; an inference endpoint answers where it is.
 *
 * @example
 * const client = new OpenAI({ baseURL: "http://127.0.0.1:8000/v1", fetch: httpTransport() });
 */
export function httpTransport(): FetchFunction {
  const agent = new Agent({ keepAlive: true });
  return (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : undefined;
    if (url === undefined || !url.startsWith("http:")) return fetch(input, init);
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== "string") return fetch(input, init);
    return send(agent, url, init ?? {}, body ?? undefined);
  };
}

function send(
  agent: Agent,
  url: string,
  init: RequestInit,
  body: string | undefined,
): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const signal = init.signal ?? undefined;
    if (signal?.aborted) {
      reject(abortError(signal));
      return;
    }
    const headers = headerRecord(init.headers);
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
    const req = request(url, { method: init.method ?? "GET", headers, agent });
    const onAbort = () => req.destroy(abortError(signal!));
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => signal?.removeEventListener("abort", onAbort);
    req.on("error", (error) => {
      done();
      reject(error);
    });
    req.on("response", (res) => {
      readBody(res).then(
        (bytes) => {
          done();
          const status = res.statusCode ?? 0;
          const responseHeaders = new Headers();
          const raw = res.rawHeaders;
          for (let i = 0; i + 1 < raw.length; i += 2) {
            const name = raw[i]!.toLowerCase();
            // the body below is already decoded
            if (name === "content-encoding" || name === "content-length") continue;
            responseHeaders.append(name, raw[i + 1]!);
          }
          const nullBody = status === 204 || status === 205 || status === 304;
          resolve(
            new Response(nullBody ? null : bytes, {
              status,
              statusText: res.statusMessage ?? "",
              headers: responseHeaders,
            }),
          );
        },
        (error: unknown) => {
          done();
          reject(error);
        },
      );
    });
    req.end(body);
  });
}

async function readBody(res: IncomingMessage): Promise<Buffer> {
  const encoding = res.headers["content-encoding"];
  const stream =
    encoding === "gzip" || encoding === "x-gzip"
      ? res.pipe(createGunzip())
      : encoding === "deflate"
        ? res.pipe(createInflate())
        : encoding === "br"
          ? res.pipe(createBrotliDecompress())
          : res;
  if (stream !== res) res.on("error", (error) => stream.destroy(error));
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

function headerRecord(headers: RequestInit["headers"]): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  if (headers instanceof Headers) {
    headers.forEach((value, name) => {
      out[name] = value;
    });
  } else if (Array.isArray(headers)) {
    for (const [name = "", value = ""] of headers) out[name.toLowerCase()] = value;
  } else {
    for (const [name, value] of Object.entries(headers as Record<string, string>)) {
      out[name.toLowerCase()] = value;
    }
  }
  return out;
}

/** What `fetch` rejects with when its signal aborts: the signal's reason (openai tells timeouts by it). */
function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error
    ? reason
    : new DOMException("This operation was aborted", "AbortError");
}
