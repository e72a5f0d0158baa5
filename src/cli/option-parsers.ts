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

/** Collects a repeatable option's values (in place: copying would be quadratic in their number). */
export function collect(value: string, previous: string[] = []): string[] {
  previous.push(value);
  return previous;
}

// Every instant a command compares with the database must be a year 1 to 9999 timestamp: the
// years an ISO date writes with four digits, and that Postgres reads back.
const EARLIEST_MS = Date.parse("0001-01-01T00:00:00Z");
const LATEST_MS = Date.parse("9999-12-31T23:59:59.999Z");

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const;
type DurationUnit = keyof typeof UNIT_MS;

/**
 * Parses `--since`: an ISO date (`2026-11-01`, UTC midnight), an ISO timestamp, or a duration
 * ago (`7d`, `24h`, `30m`, `90s`). A date or a duration that reaches outside the years 1 to 9999
 * is refused with the range, never passed on to the database.
 *
 * @example
 * parseSince("7d", Date.parse("2026-11-25T12:00:00Z")); // 2026-11-18T12:00:00.000Z
 */
export function parseSince(value: string, now = Date.now()): Date {
  const text = value.trim();
  const ago = parseDuration(text, ["d", "h", "m", "s"]);
  if (ago !== null) return instantAgo(ago, value, "--since", now);
  // ISO dates and timestamps only: Date.parse's legacy formats would read "7" as 2001-07-01.
  const iso =
    /^([+-]?\d{4,})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(
      text,
    );
  const bad = new StrataError(
    "bad_usage",
    `--since "${value}" is neither a date (2026-11-01) nor a duration (7d, 24h, 30m)`,
  );
  if (iso === null) throw bad;
  const year = Number(iso[1]);
  const outOfRange = new StrataError(
    "bad_usage",
    `--since "${value}" is out of range: use a date from 0001-01-01 to 9999-12-31`,
  );
  if (!/^\d{4}$/.test(iso[1]!) || year < 1) throw outOfRange;
  const day = new Date(0);
  day.setUTCFullYear(year, Number(iso[2]) - 1, Number(iso[3]));
  if (day.getUTCMonth() !== Number(iso[2]) - 1 || day.getUTCDate() !== Number(iso[3])) throw bad;
  const ms = Date.parse(iso[4] === undefined ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(ms)) throw bad;
  // an offset can move a timestamp of 9999-12-31 into the year 10000
  if (ms < EARLIEST_MS || ms > LATEST_MS) throw outOfRange;
  return new Date(ms);
}

/**
 * Parses `runs prune --older-than`: an age in days or hours (`30d`, `12h`), returned as the
 * instant that long before `now`; an age reaching before the year 1 is refused with the limit.
 *
 * @example
 * parseOlderThan("30d", Date.parse("2026-11-25T00:00:00Z")); // 2026-10-26T00:00:00.000Z
 */
export function parseOlderThan(value: string, now = Date.now()): Date {
  const ago = parseDuration(value.trim(), ["d", "h"]);
  if (ago === null) {
    throw new StrataError(
      "bad_usage",
      `--older-than must be an age such as 30d or 12h, not "${value}"`,
    );
  }
  return instantAgo(ago, value, "--older-than", now);
}

/** `30d` → 30 days; null when `text` is not a whole number and one of `units`. */
function parseDuration(
  text: string,
  units: ReadonlyArray<DurationUnit>,
): { readonly count: bigint; readonly unit: DurationUnit } | null {
  const match = /^(\d+)\s*([a-z])$/.exec(text);
  if (match === null || !units.includes(match[2] as DurationUnit)) return null;
  // BigInt: "99999999999999999999d" must be too long, not rounded to a float first
  return { count: BigInt(match[1]!), unit: match[2] as DurationUnit };
}

function instantAgo(
  ago: { readonly count: bigint; readonly unit: DurationUnit },
  value: string,
  option: string,
  now: number,
): Date {
  const unitMs = UNIT_MS[ago.unit];
  const most = Math.floor((now - EARLIEST_MS) / unitMs);
  if (ago.count > BigInt(most)) {
    throw new StrataError(
      "bad_usage",
      `${option} "${value}" reaches back before the year 1; use at most ${most}${ago.unit}`,
    );
  }
  return new Date(now - Number(ago.count) * unitMs);
}
