import { StrataError } from "../errors.js";

/** Parses `--max-cost`: a non-negative decimal amount of USD, kept exact as a string. */
export function parseUsd(value: string, option = "--max-cost"): string {
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) {
    throw new StrataError(
      "bad_usage",
      `${option} must be a non-negative amount of USD such as 5 or 0.25, not "${value}"`,
    );
  }
  return trimmed;
}

/** Parses a positive integer option such as `--concurrency`. */
export function parsePositiveInt(value: string, option: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new StrataError("bad_usage", `${option} must be a positive integer, not "${value}"`);
  }
  return Number(value);
}

/** Collects a repeatable option's values. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
