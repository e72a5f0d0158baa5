import { describe, expect, it } from "vitest";
import { parseOlderThan, parseSince } from "../../src/cli/option-parsers.js";
import { StrataError } from "../../src/errors.js";

const NOW = Date.parse("2026-11-25T12:00:00Z");

/** The error `parse(value)` throws; the ISO instant it returned, when it throws none. */
function errorOf(parse: (value: string, now: number) => Date, value: string): unknown {
  try {
    return parse(value, NOW).toISOString();
  } catch (error) {
    return error;
  }
}

function expectBadUsage(error: unknown, ...says: ReadonlyArray<string>): void {
  expect(error).toBeInstanceOf(StrataError);
  expect((error as StrataError).code).toBe("bad_usage");
  for (const text of says) expect((error as StrataError).message).toContain(text);
}

describe("parseSince at the edges of the representable range", () => {
  it.each([
    ["0001-01-01", "0001-01-01T00:00:00.000Z"],
    ["0012-02-29", "0012-02-29T00:00:00.000Z"],
    ["9999-12-31", "9999-12-31T00:00:00.000Z"],
    ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"],
    ["739944d", "0001-01-01T12:00:00.000Z"],
    ["0d", "2026-11-25T12:00:00.000Z"],
  ])("reads %s as %s", (value, iso) => {
    expect(parseSince(value, NOW).toISOString()).toBe(iso);
  });

  it.each([
    ["99999-01-01", "a year of five digits"],
    ["+010000-01-01", "an extended ISO year"],
    ["0000-01-01", "the year 0, which Postgres does not have"],
    ["9999-12-31T23:59:59-14:00", "an offset moving it into the year 10000"],
    ["0001-01-01T00:00:00+14:00", "an offset moving it into the year 0"],
  ])("refuses %s (%s) naming the range of dates", (value) => {
    expectBadUsage(
      errorOf(parseSince, value),
      `--since "${value}" is out of range: use a date from 0001-01-01 to 9999-12-31`,
    );
  });

  it.each([
    ["739945d", 739944],
    ["100000000d", 739944],
    ["99999999999999999999d", 739944],
    ["99999999999999999999s", 63931204800],
    ["17758669h", 17758668],
  ])("refuses the duration %s, which reaches before the year 1, naming the most", (value, most) => {
    const unit = value.slice(-1);
    expectBadUsage(
      errorOf(parseSince, value),
      `--since "${value}" reaches back before the year 1; use at most ${most}${unit}`,
    );
  });

  it.each(["1e400d", "-5d", "NaN", "Infinity", "7.5d", "7w", "", "2026-01-01T25:00"])(
    "refuses %j as neither a date nor a duration",
    (value) => {
      expectBadUsage(errorOf(parseSince, value), `--since "${value}" is neither a date`);
    },
  );
});

describe("parseOlderThan", () => {
  it.each([
    ["30d", "2026-10-26T12:00:00.000Z"],
    ["12h", "2026-11-25T00:00:00.000Z"],
    ["0d", "2026-11-25T12:00:00.000Z"],
    ["739944d", "0001-01-01T12:00:00.000Z"],
  ])("reads %s as %s", (value, iso) => {
    expect(parseOlderThan(value, NOW).toISOString()).toBe(iso);
  });

  it.each(["739945d", "100000000d", "99999999999999999999d", "17758669h"])(
    "refuses the age %s, which reaches before the year 1, naming the most",
    (value) => {
      expectBadUsage(
        errorOf(parseOlderThan, value),
        `--older-than "${value}" reaches back before the year 1; use at most`,
      );
    },
  );

  it.each(["1e400d", "-5d", "NaN", "30", "30m", "Infinity", ""])(
    "refuses %j as not an age",
    (value) => {
      expectBadUsage(
        errorOf(parseOlderThan, value),
        `--older-than must be an age such as 30d or 12h, not "${value}"`,
      );
    },
  );
});
