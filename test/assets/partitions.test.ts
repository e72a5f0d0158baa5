import { afterEach, describe, expect, it } from "vitest";
import {
  dailyPartitions,
  hourlyPartitions,
  MAX_PARTITIONS,
  staticPartitions,
} from "../../src/assets/partitions.js";
import { StrataError } from "../../src/errors.js";

function thrown(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (e) {
    if (e instanceof StrataError) return e;
    throw e;
  }
  throw new Error("expected a StrataError");
}

describe("staticPartitions", () => {
  const languages = staticPartitions(["en", "de", "fr"]);

  it("lists its keys in declaration order, frozen", () => {
    expect(languages.kind).toBe("static");
    expect(languages.keys()).toEqual(["en", "de", "fr"]);
    expect(languages.staticKeys).toEqual(["en", "de", "fr"]);
    expect(Object.isFrozen(languages.keys())).toBe(true);
    expect(Object.isFrozen(languages)).toBe(true);
    expect(languages.describe()).toBe("static [en, de, fr]");
  });

  it("knows which keys it has", () => {
    expect(languages.has("de")).toBe(true);
    expect(languages.has("es")).toBe(false);
    expect(languages.has("EN")).toBe(false);
  });

  it("returns a range of keys in declaration order", () => {
    expect(languages.range("en", "de")).toEqual(["en", "de"]);
    expect(languages.range("de", "fr")).toEqual(["de", "fr"]);
    expect(languages.range("fr", "fr")).toEqual(["fr"]);
  });

  it("rejects a backwards range and a key it does not have", () => {
    const backwards = thrown(() => languages.range("fr", "en"));
    expect(backwards.code).toBe("bad_partition");
    expect(backwards.message).toBe('partition range "fr..en" runs backwards');
    const unknown = thrown(() => languages.range("en", "es"));
    expect(unknown.code).toBe("bad_partition");
    expect(unknown.message).toBe('"es" is not a partition of static [en, de, fr]');
  });

  it("equals a definition with the same keys in the same order only", () => {
    expect(languages.equals(staticPartitions(["en", "de", "fr"]))).toBe(true);
    expect(languages.equals(staticPartitions(["de", "en", "fr"]))).toBe(false);
    expect(languages.equals(staticPartitions(["en", "de"]))).toBe(false);
    expect(languages.equals(dailyPartitions({ start: "2026-01-01" }))).toBe(false);
  });

  it("copies its keys, so changing the array passed in changes nothing", () => {
    const keys = ["a", "b"];
    const partitions = staticPartitions(keys);
    keys.push("c");
    expect(partitions.keys()).toEqual(["a", "b"]);
  });

  it("rejects a repeated key and a key with bad characters", () => {
    const repeated = thrown(() => staticPartitions(["en", "de", "en"]));
    expect(repeated.code).toBe("invalid_definition");
    expect(repeated.message).toContain('repeat the key "en"');
    const bad = thrown(() => staticPartitions(["en", "de/at"]));
    expect(bad.code).toBe("invalid_definition");
    expect(bad.message).toContain('static partition key "de/at" is invalid');
  });
});

describe("dailyPartitions", () => {
  const days = dailyPartitions({ start: "2026-01-01" });
  const now = new Date("2026-01-04T12:00:00Z");

  it("has one key per complete UTC day from the start to yesterday", () => {
    expect(days.kind).toBe("daily");
    expect(days.start).toBe("2026-01-01");
    expect(days.keys(now)).toEqual(["2026-01-01", "2026-01-02", "2026-01-03"]);
    expect(days.describe()).toBe("daily from 2026-01-01");
  });

  it("has no keys before its first day is over", () => {
    expect(days.keys(new Date("2026-01-01T23:59:59Z"))).toEqual([]);
    expect(days.keys(new Date("2026-01-02T00:00:00Z"))).toEqual(["2026-01-01"]);
    expect(days.keys(new Date("2025-06-01T00:00:00Z"))).toEqual([]);
  });

  it("knows which keys exist at a given time", () => {
    expect(days.has("2026-01-03", now)).toBe(true);
    expect(days.has("2026-01-04", now)).toBe(false); // today is not complete
    expect(days.has("2025-12-31", now)).toBe(false); // before the start
    expect(days.has("2026-1-2", now)).toBe(false);
    expect(days.has("2026-02-30", new Date("2026-06-01T00:00:00Z"))).toBe(false);
  });

  it("returns a range forwards and rejects one backwards", () => {
    expect(days.range("2026-01-02", "2026-01-03", now)).toEqual(["2026-01-02", "2026-01-03"]);
    const backwards = thrown(() => days.range("2026-01-03", "2026-01-01", now));
    expect(backwards.code).toBe("bad_partition");
    expect(backwards.message).toBe('partition range "2026-01-03..2026-01-01" runs backwards');
  });

  it("rejects a range past the last complete day and says which keys are valid", () => {
    const error = thrown(() => days.range("2026-01-01", "2026-01-04", now));
    expect(error.code).toBe("bad_partition");
    expect(error.message).toBe(
      '"2026-01-04" is not a partition of daily from 2026-01-01; valid keys run from "2026-01-01" to "2026-01-03"',
    );
    const early = thrown(() =>
      days.range("2026-01-01", "2026-01-01", new Date("2026-01-01T06:00:00Z")),
    );
    expect(early.message).toContain("it has no complete partition yet");
  });

  it("floors a start timestamp to its UTC day", () => {
    expect(dailyPartitions({ start: "2026-01-05T18:30:00Z" }).start).toBe("2026-01-05");
    expect(dailyPartitions({ start: new Date("2026-01-05T18:30:00Z") }).start).toBe("2026-01-05");
  });

  it("equals a daily definition with the same start only", () => {
    expect(days.equals(dailyPartitions({ start: "2026-01-01" }))).toBe(true);
    expect(days.equals(dailyPartitions({ start: "2026-01-01T10:00:00Z" }))).toBe(true);
    expect(days.equals(dailyPartitions({ start: "2026-01-02" }))).toBe(false);
    expect(days.equals(hourlyPartitions({ start: "2026-01-01" }))).toBe(false);
    expect(days.equals(staticPartitions(["2026-01-01"]))).toBe(false);
  });

  it("rejects an invalid start with code invalid_definition", () => {
    for (const start of ["not a date", "2026-13-45", ""]) {
      const error = thrown(() => dailyPartitions({ start }));
      expect(error.code).toBe("invalid_definition");
      expect(error.message).toContain(`daily partitions have an invalid start "${start}"`);
      expect(error.message).toContain('use a date such as "2026-01-01"');
    }
    expect(thrown(() => hourlyPartitions({ start: new Date(Number.NaN) })).code).toBe(
      "invalid_definition",
    );
  });
});

describe("hourlyPartitions", () => {
  const hours = hourlyPartitions({ start: "2026-01-01T00:00:00Z" });
  const now = new Date("2026-01-01T03:30:00Z");

  it("has one key per complete UTC hour, keyed YYYY-MM-DD-HH:00", () => {
    expect(hours.keys(now)).toEqual(["2026-01-01-00:00", "2026-01-01-01:00", "2026-01-01-02:00"]);
    expect(hours.describe()).toBe("hourly from 2026-01-01-00:00");
  });

  it("crosses midnight", () => {
    const late = hourlyPartitions({ start: "2026-01-01T22:00:00Z" });
    expect(late.keys(new Date("2026-01-02T01:00:00Z"))).toEqual([
      "2026-01-01-22:00",
      "2026-01-01-23:00",
      "2026-01-02-00:00",
    ]);
  });

  it("knows which keys exist and rejects malformed ones", () => {
    expect(hours.has("2026-01-01-02:00", now)).toBe(true);
    expect(hours.has("2026-01-01-03:00", now)).toBe(false);
    expect(hours.has("2026-01-01-02:30", now)).toBe(false);
    expect(hours.has("2026-01-01-24:00", now)).toBe(false);
    expect(hours.has("2026-01-01", now)).toBe(false);
  });

  it("returns a range forwards and rejects one backwards", () => {
    expect(hours.range("2026-01-01-01:00", "2026-01-01-02:00", now)).toEqual([
      "2026-01-01-01:00",
      "2026-01-01-02:00",
    ]);
    expect(thrown(() => hours.range("2026-01-01-02:00", "2026-01-01-00:00", now)).code).toBe(
      "bad_partition",
    );
  });

  it("floors the start to its hour", () => {
    expect(hourlyPartitions({ start: "2026-01-01T05:45:00Z" }).start).toBe("2026-01-01-05:00");
  });
});

describe("time partitions in another time zone", () => {
  const original = process.env.TZ;
  afterEach(() => {
    if (original === undefined) delete process.env.TZ;
    else process.env.TZ = original;
  });

  it("read a start without an offset as UTC, whatever the local time zone", () => {
    process.env.TZ = "America/New_York";
    expect(new Date(2026, 0, 1).getTimezoneOffset()).not.toBe(0);
    expect(hourlyPartitions({ start: "2026-01-01T05:30:00" }).start).toBe("2026-01-01-05:00");
    expect(dailyPartitions({ start: "2026-01-01T23:30:00" }).start).toBe("2026-01-01");
    expect(dailyPartitions({ start: "2026-01-01" }).keys(new Date("2026-01-02T01:00:00Z"))).toEqual(
      ["2026-01-01"],
    );
  });
});

describe("partitions at the edges of size and time", () => {
  it("refuses time partitions that would have more than MAX_PARTITIONS keys, naming the count", () => {
    // hourly from 1800: about 2 million hours by now
    const error = thrown(() => hourlyPartitions({ start: "1800-01-01" }));
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toMatch(
      /^hourly partitions from 1800-01-01-00:00 would have \d{7} partitions; strata supports at most 1000000 per asset: start them later$/,
    );
    // as a definition ages past the limit, listing its keys says so instead of building them all
    const hours = hourlyPartitions({ start: "2000-01-01" });
    const later = new Date("2200-01-01T00:00:00Z");
    expect(thrown(() => hours.keys(later)).message).toContain(
      `would have 1753176 partitions; strata supports at most ${MAX_PARTITIONS} per asset`,
    );
  });

  it("lists a daily definition spanning centuries quickly enough", () => {
    const days = dailyPartitions({ start: "0001-01-01" });
    const keys = days.keys(new Date("2026-01-02T00:00:00Z"));
    expect(keys[0]).toBe("0001-01-01");
    expect(keys[keys.length - 1]).toBe("2026-01-01");
    expect(days.has("1066-10-14")).toBe(true);
  });

  it("refuses more than MAX_PARTITIONS static keys", () => {
    const keys = Array.from({ length: MAX_PARTITIONS + 1 }, (_, i) => `k${i}`);
    const error = thrown(() => staticPartitions(keys));
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toBe(
      `static partitions would have ${MAX_PARTITIONS + 1} partitions; strata supports at most ${MAX_PARTITIONS} per asset: use fewer keys`,
    );
  });

  it.each<[string, string | Date]>([
    ["a five-digit year", "99999-01-01"],
    ["an extended ISO year", "+010000-01-01T00:00:00Z"],
    ["the year 0", "0000-06-01"],
    ["a Date before the year 1", new Date(-1e15)],
  ])("refuses a start in %s, outside the years 1 to 9999", (_name, start) => {
    const error = thrown(() => dailyPartitions({ start }));
    expect(error.code).toBe("invalid_definition");
    expect(error.message).toContain("outside the years 1 to 9999");
  });
});
