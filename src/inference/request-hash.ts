import { createHash } from "node:crypto";

/**
 * The cache and checkpoint key of an inference request: SHA-256 of the canonical JSON of the
 * provider model name, the messages and the params. Object keys are sorted at every level, so
 * the same request hashes the same however it was written.
 *
 * @example
 * requestHash("qwen3-8b", [{ role: "user", content: "hi" }], { max_tokens: 16 });
 */
export function requestHash(providerModel: string, messages: unknown, params: unknown): string {
  return createHash("sha256")
    .update(canonicalJson({ model: providerModel, messages, params: params ?? {} }))
    .digest("hex");
}

/** JSON with object keys sorted recursively and `undefined` members left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value))
    return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== "function")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}
