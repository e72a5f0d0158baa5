import { redactSecrets } from "../util/redactor.js";

/**
 * Marks a text stored in its escaped form. U+FFFF is a noncharacter, reserved by Unicode for
 * exactly such internal use: no answer carries it at its start except on purpose, and then it
 * is escaped too, so decoding is never ambiguous.
 */
export const ESCAPED_TEXT_MARK = "\uffff";

/** A NUL, or a UTF-16 surrogate without its pair: what a Postgres `text` cannot hold. */
const UNSTORABLE = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, "g");

/** Messages (errors) longer than this are cut when stored: they are for people, not replay. */
export const MAX_STORED_MESSAGE_LENGTH = 8_000;

/**
 * An answer's text as the ledger stores it, losslessly. Postgres `text` refuses NUL and turns a
 * lone surrogate into U+FFFD, so a text holding either (or starting with the mark itself) is
 * stored as U+FFFF followed by its JSON string literal (`"a\u0000b"`), which
 * {@link decodeStoredText} turns back into the exact same string. Every other text, all but
 * hostile ones, is stored as it is, readable in plain SQL.
 *
 * @example
 * decodeStoredText(encodeStoredText("a\u0000b")) === "a\u0000b"; // true
 */
export function encodeStoredText(text: string): string {
  if (!UNSTORABLE.test(text) && !text.startsWith(ESCAPED_TEXT_MARK)) return text;
  return ESCAPED_TEXT_MARK + JSON.stringify(text);
}

/**
 * The text {@link encodeStoredText} stored. A value that merely looks escaped (not a JSON string
 * after the mark, as no version of strata wrote it) comes back as it is.
 *
 * @example
 * decodeStoredText("plain answer"); // "plain answer"
 */
export function decodeStoredText(stored: string): string {
  if (!stored.startsWith(ESCAPED_TEXT_MARK)) return stored;
  try {
    const value: unknown = JSON.parse(stored.slice(ESCAPED_TEXT_MARK.length));
    return typeof value === "string" ? value : stored;
  } catch {
    return stored;
  }
}

/**
 * A text any `text` or `jsonb` column accepts: NULs and lone surrogates become U+FFFD (as a
 * UTF-8 decoder shows them). Lossy: for identifiers and messages, never for answers.
 */
export function storableText(text: string): string {
  return UNSTORABLE.test(text) ? text.replace(UNSTORABLE_ALL, "\ufffd") : text;
}

/**
 * An error message as strata stores it: without the process's secrets (API keys, the database
 * password), storable in any column, and at most {@link MAX_STORED_MESSAGE_LENGTH} characters
 * (an endpoint may answer an error with megabytes).
 *
 * @example
 * storableMessage(`401: bad key ${apiKey}`); // "401: bad key [redacted]"
 */
export function storableMessage(message: string): string {
  const text = storableText(redactSecrets(message));
  if (text.length <= MAX_STORED_MESSAGE_LENGTH) return text;
  const kept = storableText(text.slice(0, MAX_STORED_MESSAGE_LENGTH));
  return `${kept}… (${text.length - MAX_STORED_MESSAGE_LENGTH} more characters)`;
}

/**
 * `JSON.stringify(value)` for a `jsonb` parameter: every string (values and keys) without the
 * process's secrets and storable (a NUL or a lone surrogate in a string makes Postgres refuse
 * the whole document).
 *
 * @example
 * sql`select * from jsonb_to_recordset(${storableJson(rows)}::jsonb) ...`;
 */
export function storableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "string") return storableText(redactSecrets(v));
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    if (keys.every((k) => !UNSTORABLE.test(k))) return v;
    return Object.fromEntries(
      keys.map((k) => [storableText(k), (v as Record<string, unknown>)[k]]),
    );
  });
}
