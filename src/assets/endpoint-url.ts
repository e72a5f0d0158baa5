const CREDENTIALS =
  "it has credentials in it; remove them and put the API key in the env var named by apiKeyEnv";

/**
 * What is wrong with an endpoint's base URL, or null when it is one strata can call: an
 * `http://` or `https://` URL with a host, nothing in it that is a secret, and nothing after the
 * path (the client appends `/chat/completions` to it as text).
 *
 * The reason reads after "... is invalid: " and says the fix. It never repeats a user name,
 * password or query string from `value`.
 *
 * @example
 * endpointUrlProblem("localhost:8000/v1"); // 'it has no scheme; write "http://localhost:8000/v1"'
 * endpointUrlProblem("http://127.0.0.1:8000/v1"); // null
 */
export function endpointUrlProblem(value: unknown): string | null {
  if (typeof value !== "string") return `it is ${describe(value)}, not a string`;
  if (value.trim() === "") return 'it is empty; write a URL such as "http://127.0.0.1:8000/v1"';
  if (/\s/.test(value)) return "it contains whitespace; remove it";
  if (/^[/.]/.test(value)) {
    return 'it is a path, not a URL; write the whole URL, such as "http://127.0.0.1:8000/v1"';
  }
  if (!value.includes("://") && !/^https?:/i.test(value)) {
    // "localhost:8000/v1" parses as the scheme "localhost:" and "127.0.0.1:8000/v1" not at all:
    // both are a host and a port without their scheme.
    const withScheme = parseUrl(`http://${value}`);
    if (withScheme !== null && withScheme.hostname !== "") {
      if (withScheme.username !== "" || withScheme.password !== "") return CREDENTIALS;
      return `it has no scheme; write "http://${redactUrl(value)}"`;
    }
  }
  const url = parseUrl(value);
  if (url === null) return 'it is not a URL; write one such as "http://127.0.0.1:8000/v1"';
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `its scheme "${url.protocol.slice(0, -1)}" is not http or https; an endpoint speaks the OpenAI API over http:// or https://`;
  }
  if (!/^https?:\/\//i.test(value)) return `write "${url.protocol}//" before the host`;
  if (url.username !== "" || url.password !== "") return CREDENTIALS;
  if (url.hostname === "") return "it has no host";
  if (url.search !== "" || value.includes("?")) {
    return "it has a query string; the client appends paths such as /chat/completions to baseURL, so end it with the path (such as /v1)";
  }
  if (url.hash !== "" || value.includes("#")) {
    return "it has a #fragment; the client appends paths such as /chat/completions to baseURL, so end it with the path (such as /v1)";
  }
  return null;
}

/**
 * A URL as it may be shown: any `user:password@` and query string replaced by `***`, so that an
 * error message or a log line never carries a credential.
 *
 * @example
 * redactUrl("http://me:secret@gpu-1:8000/v1?key=sk-1"); // "http://***@gpu-1:8000/v1?***"
 */
export function redactUrl(value: string): string {
  return value
    .replace(/^((?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/)?[^/?#@]*@/, "$1***@")
    .replace(/\?.*$/s, "?***");
}

function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}
