import { tableFromArrays } from "apache-arrow";
import { describe, expect, it } from "vitest";
import { StrataError } from "../../src/errors.js";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { rowsToTable } from "../../src/values/arrow-encoder.js";
import { MAX_JSON_DEPTH, toJsonText } from "../../src/values/json-text.js";

/** The StrataError `fn` throws. */
function strataErrorOf(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error("expected a StrataError, nothing was thrown");
}

function typesOf(rows: ReadonlyArray<object>): Record<string, string> {
  const table = rowsToTable(rows, "scores");
  return Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
}

describe("rowsToTable number columns", () => {
  it("stores numbers as Float64 whether or not they are whole, so the type does not follow the values", () => {
    const whole = typesOf([{ score: 1 }, { score: 2 }, { score: -3 }]);
    const fractions = typesOf([{ score: 0.5 }, { score: 2.25 }]);
    const mixed = typesOf([{ score: 1 }, { score: 0.5 }]);
    const huge = typesOf([{ score: 2 ** 60 }]);
    expect(whole).toEqual({ score: "Float64" });
    expect(fractions).toEqual(whole);
    expect(mixed).toEqual(whole);
    expect(huge).toEqual(whole);
  });

  it("reads whole numbers back as the same numbers, -0 included", () => {
    const rows = [{ n: 1 }, { n: -0 }, { n: 2 ** 53 + 2 }, { n: null }];
    const back = tableToRows(rowsToTable(rows, "scores"));
    expect(back).toEqual(rows);
    expect(Object.is((back[1] as { n: number }).n, -0)).toBe(true);
  });

  it("keeps bigints in an Int64 column", () => {
    expect(typesOf([{ id: 1n }])).toEqual({ id: "Int64" });
  });

  it("still reads an Int64 column of numbers written by earlier versions back as numbers", () => {
    const earlier = tableFromArrays({ n: BigInt64Array.from([1n, -2n]) });
    expect(tableToRows(earlier)).toEqual([{ n: 1 }, { n: -2 }]);
  });
});

describe("rowsToTable with values it cannot store", () => {
  /** Rows with one hostile cell each, and what the message says about it. */
  const cyclic: Record<string, unknown> = { id: "d1" };
  cyclic.self = cyclic;
  const deeplyCyclic: Record<string, unknown> = { id: "d2", meta: { a: { b: [1] } } };
  ((deeplyCyclic.meta as { a: { b: unknown[] } }).a.b as unknown[]).push(deeplyCyclic);
  let deep: Record<string, unknown> = {};
  const deepRoot = deep;
  for (let i = 0; i < 100_000; i++) {
    const next = {};
    deep.a = next;
    deep = next;
  }
  let deepArray: unknown[] = [];
  const deepArrayRoot = deepArray;
  for (let i = 0; i < 1_000_000; i++) {
    const next: unknown[] = [];
    deepArray.push(next);
    deepArray = next;
  }
  const cases: Array<[string, object, string, RegExp]> = [
    ["a row that contains itself", cyclic, "self", /holds a reference cycle at self/],
    [
      "a row that contains itself deeply",
      deeplyCyclic,
      "meta",
      /holds a reference cycle at meta\.a\.b\[1\]/,
    ],
    ["a nested cycle", { meta: { x: cyclic } }, "meta", /holds a reference cycle at meta\.x\.self/],
    [
      "100,000 levels of objects",
      { meta: deepRoot },
      "meta",
      new RegExp(`nested more than ${MAX_JSON_DEPTH} levels deep`),
    ],
    ["1,000,000 levels of arrays", { meta: deepArrayRoot }, "meta", /nested more than/],
    ["a bigint in a JSON column", { meta: { n: 1n } }, "meta", /holds a bigint at meta\.n/],
    ["a nested function", { meta: { f: () => 1 } }, "meta", /holds a function at meta\.f/],
    ["a nested symbol", { meta: [Symbol("s")] }, "meta", /holds a symbol at meta\[0\]/],
    ["a nested Map", { meta: { "a key": new Map() } }, "meta", /holds a Map at meta\["a key"\]/],
    [
      "a nested typed array",
      { meta: [new Float32Array(2)] },
      "meta",
      /a Float32Array at meta\[0\]/,
    ],
    [
      "a toJSON that throws a multi-line error",
      {
        meta: {
          toJSON: () => {
            throw new Error("first\nsecond");
          },
        },
      },
      "meta",
      /toJSON\(\) failed \(first\)/,
    ],
    [
      "a nested getter that throws",
      {
        meta: {
          get x() {
            throw new Error("no x");
          },
        },
      },
      "meta",
      /threw when read \(no x\) at meta\.x/,
    ],
    [
      "a row getter that throws",
      {
        id: "d1",
        get score() {
          throw new Error("no score");
        },
      },
      "score",
      /could not be read \(no score\)/,
    ],
    [
      "a top-level function",
      { id: "d1", cb: () => 1 },
      "cb",
      /holds a function, which cannot be stored/,
    ],
    [
      "a top-level symbol",
      { id: "d1", s: Symbol("s") },
      "s",
      /holds a symbol, which cannot be stored/,
    ],
  ];

  it.each(cases)(
    "refuses %s in one line naming the asset and column",
    (_name, row, column, says) => {
      const error = strataErrorOf(() => rowsToTable([{ id: "d0" }, row], "docs"));
      expect(error.code).toBe("bad_value");
      expect(error.message).not.toContain("\n");
      expect(error.message).toMatch(new RegExp(`^asset "docs" column "${column}" row 1 `));
      expect(error.message).toMatch(says);
    },
  );

  it.each([
    ["a Map", new Map([["id", 1]])],
    ["a Date", new Date(0)],
    ["a Uint8Array", new Uint8Array(2)],
  ])("refuses a row that is %s instead of storing it as a row with no columns", (what, row) => {
    const error = strataErrorOf(() => rowsToTable([row], "docs"));
    expect(error.message).toBe(
      `asset "docs" row 0 is ${what}; each row must be a plain object such as { id: "d1" }`,
    );
  });

  it("refuses a row whose Proxy cannot list its keys, in one line", () => {
    const row = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("trap\nat somewhere");
        },
      },
    );
    const error = strataErrorOf(() => rowsToTable([row], "docs"));
    expect(error.message).toBe(
      'asset "docs" row 0 could not be read (trap); return rows of plain data',
    );
  });

  it("still stores shared (not cyclic) references, Dates and toJSON forms in JSON columns", () => {
    const shared = { k: 1 };
    const table = rowsToTable(
      [{ meta: { a: shared, b: [shared], at: new Date(0), big: { toJSON: () => "7" } } }],
      "docs",
    );
    expect(tableToRows(table)).toEqual([
      { meta: { a: { k: 1 }, b: [{ k: 1 }], at: "1970-01-01T00:00:00.000Z", big: "7" } },
    ]);
  });

  it(`stores nesting up to ${MAX_JSON_DEPTH} levels`, () => {
    let value: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) value = [value];
    expect(toJsonText(value)).toBe(`${"[".repeat(MAX_JSON_DEPTH)}1${"]".repeat(MAX_JSON_DEPTH)}`);
    expect(() => toJsonText([value])).toThrow(/nested more than/);
  });
});
