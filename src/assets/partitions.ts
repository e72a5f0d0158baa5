import { StrataError } from "../errors.js";

/** The kinds of partitioning strata knows. */
export type PartitionsKind = "static" | "daily" | "hourly";

/**
 * How an asset is split into independently materialized partitions.
 *
 * Time partitions are UTC: daily keys are `YYYY-MM-DD`, hourly keys `YYYY-MM-DD-HH:00`, from the
 * start up to the last complete period before now.
 *
 * @example
 * const days = dailyPartitions({ start: "2026-01-01" });
 * days.keys(new Date("2026-01-03T12:00:00Z")); // ["2026-01-01", "2026-01-02"]
 */
export interface PartitionsDefinition {
  readonly kind: PartitionsKind;
  /** For time partitions: the first key. */
  readonly start: string | null;
  /** For static partitions: the keys in declaration order. */
  readonly staticKeys: ReadonlyArray<string> | null;
  /** Every key that exists at `now`, in order. */
  keys(now?: Date): ReadonlyArray<string>;
  /** True when `key` is a key of this definition at `now`. */
  has(key: string, now?: Date): boolean;
  /** True when both definitions name the same keys the same way (identity mapping applies). */
  equals(other: PartitionsDefinition): boolean;
  /** Keys from `from` to `to` inclusive; both must be keys. */
  range(from: string, to: string, now?: Date): ReadonlyArray<string>;
  /** A short human description: `static [en, de]`, `daily from 2026-01-01`. */
  describe(): string;
}

const PARTITION_KEY = /^[A-Za-z0-9_.:=@+-]+$/;

/**
 * The most partitions one definition may have. Every key is a string in memory whenever the
 * asset's status is shown, so a definition past this (hourly partitions starting in year 1) is
 * refused with a clear error rather than exhausting memory.
 */
export const MAX_PARTITIONS = 1_000_000;

function tooManyPartitions(described: string, count: number, fix: string): StrataError {
  return new StrataError(
    "invalid_definition",
    `${described} would have ${count} partitions; strata supports at most ${MAX_PARTITIONS} per asset: ${fix}`,
  );
}

/**
 * Partitions named by a fixed list of keys.
 *
 * @example
 * const languages = staticPartitions(["en", "de"]);
 */
export function staticPartitions(keys: ReadonlyArray<string>): PartitionsDefinition {
  if (keys.length > MAX_PARTITIONS) {
    throw tooManyPartitions("static partitions", keys.length, "use fewer keys");
  }
  const list = Object.freeze([...keys]);
  const set = new Set(list);
  if (set.size !== list.length) {
    const dup = list.find((k, i) => list.indexOf(k) !== i);
    throw new StrataError("invalid_definition", `static partitions repeat the key "${dup}"`);
  }
  for (const key of list) {
    if (!PARTITION_KEY.test(key)) {
      throw new StrataError(
        "invalid_definition",
        `static partition key "${key}" is invalid; use letters, digits and _ . : = @ + -`,
      );
    }
  }
  const definition: PartitionsDefinition = {
    kind: "static",
    start: null,
    staticKeys: list,
    keys: () => list,
    has: (key) => set.has(key),
    equals: (other) =>
      other.kind === "static" &&
      other.staticKeys !== null &&
      other.staticKeys.length === list.length &&
      other.staticKeys.every((k, i) => k === list[i]),
    range: (from, to) => sliceRange(list, from, to, definition),
    describe: () => `static [${list.join(", ")}]`,
  };
  return Object.freeze(definition);
}

/** Options of the time-based partitions. */
export interface TimePartitionsOptions {
  /** The first partition: a date (`2026-01-01`), an ISO timestamp or a `Date`; read as UTC. */
  readonly start: string | Date;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * One partition per UTC day, keyed `YYYY-MM-DD`, from `start` to yesterday.
 *
 * @example
 * const days = dailyPartitions({ start: "2026-01-01" });
 */
export function dailyPartitions(options: TimePartitionsOptions): PartitionsDefinition {
  return timePartitions("daily", DAY_MS, options);
}

/**
 * One partition per UTC hour, keyed `YYYY-MM-DD-HH:00`, from `start` to the last complete hour.
 *
 * @example
 * const hours = hourlyPartitions({ start: "2026-01-01T00:00:00Z" });
 */
export function hourlyPartitions(options: TimePartitionsOptions): PartitionsDefinition {
  return timePartitions("hourly", HOUR_MS, options);
}

function timePartitions(
  kind: "daily" | "hourly",
  stepMs: number,
  options: TimePartitionsOptions,
): PartitionsDefinition {
  const startMs = floorTo(parseStart(options.start, kind), stepMs);
  const format = kind === "daily" ? formatDay : formatHour;
  const parse = kind === "daily" ? parseDayKey : parseHourKey;
  const startKey = format(startMs);
  // The last complete period before `now`: the partition for a day exists once the day is over.
  const endMs = (now: Date) => floorTo(now.getTime(), stepMs) - stepMs;
  const checkCount = (now: Date) => {
    const count = Math.max(0, (endMs(now) - startMs) / stepMs + 1);
    if (count > MAX_PARTITIONS) {
      throw tooManyPartitions(`${kind} partitions from ${startKey}`, count, "start them later");
    }
  };
  checkCount(new Date());
  const keysAt = (now: Date) => {
    checkCount(now);
    const keys: string[] = [];
    for (let t = startMs, end = endMs(now); t <= end; t += stepMs) keys.push(format(t));
    return keys;
  };
  const definition: PartitionsDefinition = {
    kind,
    start: startKey,
    staticKeys: null,
    keys: (now = new Date()) => keysAt(now),
    has: (key, now = new Date()) => {
      const t = parse(key);
      return t !== null && t >= startMs && t <= endMs(now);
    },
    equals: (other) => other.kind === kind && other.start === startKey,
    range: (from, to, now = new Date()) => {
      const a = parse(from);
      const b = parse(to);
      for (const [key, t] of [
        [from, a],
        [to, b],
      ] as const) {
        if (t === null || t < startMs || t > endMs(now)) {
          const valid =
            endMs(now) < startMs
              ? "it has no complete partition yet"
              : `valid keys run from "${startKey}" to "${format(endMs(now))}"`;
          throw new StrataError(
            "bad_partition",
            `"${key}" is not a partition of ${definition.describe()}; ${valid}`,
          );
        }
      }
      if (a! > b!) {
        throw new StrataError("bad_partition", `partition range "${from}..${to}" runs backwards`);
      }
      const keys: string[] = [];
      for (let t = a!; t <= b!; t += stepMs) keys.push(format(t));
      return keys;
    },
    describe: () => `${kind} from ${startKey}`,
  };
  return Object.freeze(definition);
}

function sliceRange(
  list: ReadonlyArray<string>,
  from: string,
  to: string,
  definition: PartitionsDefinition,
): ReadonlyArray<string> {
  const a = list.indexOf(from);
  const b = list.indexOf(to);
  for (const [key, index] of [
    [from, a],
    [to, b],
  ] as const) {
    if (index < 0) {
      throw new StrataError(
        "bad_partition",
        `"${key}" is not a partition of ${definition.describe()}`,
      );
    }
  }
  if (a > b)
    throw new StrataError("bad_partition", `partition range "${from}..${to}" runs backwards`);
  return list.slice(a, b + 1);
}

// Date.UTC reads years 0 to 99 as 1900 to 1999: parse the ISO text instead.
const FIRST_START_MS = Date.parse("0001-01-01T00:00:00Z");
const END_OF_9999_MS = Date.parse("+010000-01-01T00:00:00Z");

const LOCAL_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$/;

function parseStart(start: string | Date, kind: string): number {
  const ms =
    start instanceof Date
      ? start.getTime()
      : /^\d{4}-\d{2}-\d{2}$/.test(start)
        ? Date.parse(`${start}T00:00:00Z`)
        : // A timestamp without an offset would be read in local time; partitions are UTC.
          LOCAL_TIMESTAMP.test(start)
          ? Date.parse(`${start}Z`)
          : Date.parse(start);
  if (Number.isNaN(ms)) {
    throw new StrataError(
      "invalid_definition",
      `${kind} partitions have an invalid start "${String(start)}"; use a date such as "2026-01-01"`,
    );
  }
  // Keys are written YYYY-MM-DD: years 1 to 9999.
  if (ms < FIRST_START_MS || ms >= END_OF_9999_MS) {
    throw new StrataError(
      "invalid_definition",
      `${kind} partitions have a start "${String(start instanceof Date ? start.toISOString() : start)}" outside the years 1 to 9999; use a date such as "2026-01-01"`,
    );
  }
  return ms;
}

function floorTo(ms: number, stepMs: number): number {
  return Math.floor(ms / stepMs) * stepMs;
}

function formatDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function formatHour(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}:00`;
}

function parseDayKey(key: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(key)) return null;
  const ms = Date.parse(`${key}T00:00:00Z`);
  return Number.isNaN(ms) || formatDay(ms) !== key ? null : ms;
}

function parseHourKey(key: string): number | null {
  const m = /^(\d{4}-\d{2}-\d{2})-(\d{2}):00$/.exec(key);
  if (m === null) return null;
  const ms = Date.parse(`${m[1]}T${m[2]}:00:00Z`);
  return Number.isNaN(ms) || formatHour(ms) !== key ? null : ms;
}
