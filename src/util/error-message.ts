/**
 * The message of something thrown: an Error's `message`, anything else as a string.
 *
 * @example
 * errorMessage(new Error("boom")); // "boom"
 * errorMessage(42); // "42"
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * {@link errorMessage} on one line: a multi-line message (Node's "Converting circular structure
 * to JSON", a stack) keeps its first line, so it fits in a one-line error of our own.
 *
 * @example
 * oneLineMessage(new Error("boom\n  at x")); // "boom"
 */
export function oneLineMessage(error: unknown): string {
  const message = errorMessage(error).trim();
  const end = message.indexOf("\n");
  return end === -1 ? message : message.slice(0, end).trimEnd();
}
