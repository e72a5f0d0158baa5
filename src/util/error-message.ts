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
