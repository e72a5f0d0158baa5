import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataType, Table, TimeUnit, tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StrataError } from "../../src/errors.js";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { ENCODING_METADATA_KEY, rowsToTable } from "../../src/values/arrow-encoder.js";
import { readArrowFile, writeArrowFile } from "../../src/values/arrow-file.js";
import { normalizeComputeResult } from "../../src/values/compute-result.js";
import {
  resolveStorageRoot,
  storageKey,
  storagePath,
  storedValuePath,
} from "../../src/values/storage-path.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "strata-value-storage-"));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes rows through a real file and reads them back. */
async function roundTrip(rows: ReadonlyArray<object>): Promise<{ rows: unknown[]; table: Table }> {
  const path = join(dir, "value.arrow");
  await writeArrowFile(path, rowsToTable(rows, "test/asset"));
  const table = await readArrowFile(path);
  return { rows: tableToRows(table), table };
}

/** Runs `fn` and returns the StrataError it throws. */
function strataErrorOf(fn: () => unknown): StrataError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return error as StrataError;
  }
  throw new Error("expected a StrataError, nothing was thrown");
}

const PYARROW = (() => {
  try {
    execFileSync("python3", ["-c", "import pyarrow"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("rowsToTable and tableToRows", () => {
  it("round-trips every column type through an Arrow file", async () => {
    const rows = [
      {
        text: "héllo ✓",
        float: 0.5,
        int: 42,
        big: 2n ** 60n,
        small_big: 7n,
        flag: true,
        at: new Date("2026-01-01T05:00:00.123Z"),
        nothing: null,
        meta: { model: "small", scores: [1, 2.5], nested: { ok: true } },
        tags: ["a", "b"],
        bytes: new Uint8Array([0, 1, 255]),
        maybe: "x",
      },
      {
        text: "",
        float: -1e300,
        int: -9007199254740991,
        big: -5n,
        small_big: 0n,
        flag: false,
        at: new Date(-86_400_000),
        nothing: null,
        meta: {},
        tags: [],
        bytes: new Uint8Array([]),
        maybe: null,
      },
      {
        text: null,
        float: null,
        int: null,
        big: null,
        small_big: null,
        flag: null,
        at: null,
        nothing: null,
        meta: null,
        tags: null,
        bytes: null,
        maybe: "z",
      },
    ];
    const { rows: back } = await roundTrip(rows);
    expect(back).toEqual(rows);
    const first = back[0] as Record<string, unknown>;
    expect(typeof first.int).toBe("number");
    expect(typeof first.big).toBe("bigint");
    expect(typeof first.small_big).toBe("bigint");
    expect(first.at).toBeInstanceOf(Date);
  });

  it("infers Arrow types that other readers understand", () => {
    const table = rowsToTable(
      [{ s: "a", f: 1.5, i: 1, b: true, d: new Date(0), o: { a: 1 }, n: null, big: 1n }],
      "typed",
    );
    const type = (name: string) => table.schema.fields.find((f) => f.name === name)?.type;
    expect(DataType.isUtf8(type("s"))).toBe(true);
    expect(String(type("f"))).toBe("Float64");
    expect(String(type("i"))).toBe("Float64");
    expect(DataType.isBool(type("b"))).toBe(true);
    const timestamp = type("d");
    expect(DataType.isTimestamp(timestamp) && timestamp.unit === TimeUnit.MILLISECOND).toBe(true);
    expect(DataType.isTimestamp(timestamp) && timestamp.timezone).toBe("UTC");
    expect(DataType.isUtf8(type("o"))).toBe(true);
    const jsonField = table.schema.fields.find((f) => f.name === "o");
    expect(jsonField?.metadata.get(ENCODING_METADATA_KEY)).toBe("json");
    expect(DataType.isUtf8(type("n"))).toBe(true);
    expect(String(type("big"))).toBe("Int64");
  });

  it("widens a column that mixes integers and floats to Float64", async () => {
    const table = rowsToTable([{ x: 1 }, { x: 2.5 }, { x: -0 }], "mixed");
    expect(String(table.schema.fields[0]?.type)).toBe("Float64");
    const { rows } = await roundTrip([{ x: 1 }, { x: 2.5 }]);
    expect(rows).toEqual([{ x: 1 }, { x: 2.5 }]);
  });

  it("takes the union of keys in first-seen order and stores missing keys as null", async () => {
    const { rows, table } = await roundTrip([
      { a: 1 },
      { b: "x", a: 2 },
      { c: true, d: undefined },
    ]);
    expect(table.schema.fields.map((f) => f.name)).toEqual(["a", "b", "c", "d"]);
    expect(rows).toEqual([
      { a: 1, b: null, c: null, d: null },
      { a: 2, b: "x", c: null, d: null },
      { a: null, b: null, c: true, d: null },
    ]);
  });

  it("keeps a column named __proto__ as an own property", async () => {
    const row = JSON.parse('{"__proto__": "p", "id": 1}') as object;
    const { rows } = await roundTrip([row]);
    const back = rows[0] as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(back, "__proto__")?.value).toBe("p");
  });

  it("stores zero rows as an empty table that still writes and reads", async () => {
    const { rows, table } = await roundTrip([]);
    expect(rows).toEqual([]);
    expect(table.numRows).toBe(0);
    expect(table.schema.fields).toEqual([]);
  });

  it("keeps the row count of rows that have no keys", async () => {
    const { rows } = await roundTrip([{}, {}, {}]);
    expect(rows).toEqual([{}, {}, {}]);
  });

  it("rejects a column that mixes types, naming the asset, column, rows and types", () => {
    const error = strataErrorOf(() =>
      rowsToTable([{ id: 1, score: 3 }, { id: 2 }, { id: 3, score: "high" }], "scores"),
    );
    expect(error.code).toBe("bad_value");
    expect(error.message).toBe(
      'asset "scores" column "score" has a number in row 0 and a string in row 2; give every row the same type in a column (or null)',
    );
  });

  it("rejects an object mixed with a string in one column", () => {
    const error = strataErrorOf(() => rowsToTable([{ meta: "x" }, { meta: { a: 1 } }], "docs"));
    expect(error.code).toBe("bad_value");
    expect(error.message).toContain('column "meta" has a string in row 0 and an object in row 1');
  });

  it("rejects a number mixed with a bigint in one column", () => {
    const error = strataErrorOf(() => rowsToTable([{ n: 1 }, { n: 2n }], "docs"));
    expect(error.message).toContain('column "n" has a number in row 0 and a bigint in row 1');
  });

  it("rejects a row that is not an object, naming the row index", () => {
    for (const bad of [5, null, ["a"], "row"]) {
      const error = strataErrorOf(() => rowsToTable([{ id: 1 }, bad as object], "docs"));
      expect(error.code).toBe("bad_value");
      expect(error.message).toMatch(/^asset "docs" row 1 is (a number|null|an array|a string); /);
    }
  });

  it("rejects cells that cannot be stored", () => {
    const cases: Array<[unknown, string]> = [
      [() => 1, "a function"],
      [new Map(), "a Map"],
      [new Set([1]), "a Set"],
      [Symbol("s"), "a symbol"],
    ];
    for (const [cell, described] of cases) {
      const error = strataErrorOf(() => rowsToTable([{ id: 1, cell }], "docs"));
      expect(error.code).toBe("bad_value");
      expect(error.message).toContain(`column "cell" row 0 holds ${described}`);
    }
    const invalidDate = strataErrorOf(() => rowsToTable([{ at: new Date("nope") }], "docs"));
    expect(invalidDate.message).toContain('column "at" row 0 holds an invalid Date');
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const cycle = strataErrorOf(() => rowsToTable([{ meta: circular }], "docs"));
    expect(cycle.message).toContain('column "meta" row 0 holds a reference cycle at meta.self');
    const tooBig = strataErrorOf(() => rowsToTable([{ n: 2n ** 64n }], "docs"));
    expect(tooBig.message).toContain("outside the 64-bit integer range");
  });

  // How fast is bench/'s business: a time limit here fails on a loaded machine, not on slow code.
  it("converts, writes and reads back 100,000 rows of about 1 KB", async () => {
    const filler = "x".repeat(900);
    const rows = Array.from({ length: 100_000 }, (_, i) => ({
      id: `doc-${i}`,
      text: filler,
      score: i / 3,
      count: i,
      ok: i % 2 === 0,
      meta: { i },
    }));
    const { bytes } = await writeArrowFile(join(dir, "big.arrow"), rowsToTable(rows, "big"));
    expect(bytes).toBeGreaterThan(90_000_000);
    const back = tableToRows(await readArrowFile(join(dir, "big.arrow")));
    expect(back.length).toBe(100_000);
    expect(back[99_999]).toEqual(rows[99_999]);
  });
});

describe("normalizeComputeResult", () => {
  it("converts an array of rows", () => {
    const table = normalizeComputeResult([{ id: "d1" }, { id: "d2" }], "docs");
    expect(table.numRows).toBe(2);
  });

  it("stores an Arrow Table as it is", async () => {
    const source = tableFromArrays({
      id: Int32Array.from([1, 2, 3]),
      name: ["a", "b", "c"],
    });
    const table = normalizeComputeResult(source, "docs");
    expect(table).toBe(source);
    const path = join(dir, "table.arrow");
    await writeArrowFile(path, table);
    const back = await readArrowFile(path);
    expect(String(back.schema.fields[0]?.type)).toBe("Int32");
    expect(tableToRows(back)).toEqual([
      { id: 1, name: "a" },
      { id: 2, name: "b" },
      { id: 3, name: "c" },
    ]);
  });

  it("accepts a Table from another copy of apache-arrow, dictionaries and nesting included", async () => {
    // the CommonJS build is a second module instance with its own classes
    const cjsArrow = createRequire(import.meta.url)(
      "apache-arrow",
    ) as typeof import("apache-arrow");
    expect(cjsArrow.Table).not.toBe(Table);
    const foreign = cjsArrow.tableFromArrays({
      n: Float64Array.from([1.5, 2.5]),
      s: ["a", "b"], // dictionary-encoded by tableFromArrays
      big: BigInt64Array.from([2n ** 60n, 3n]),
      at: [new Date(0), new Date(1000)],
    });
    const nested = cjsArrow.vectorFromArray(
      [
        { k: 1, xs: [1, 2] },
        { k: 2, xs: [] },
      ],
      new cjsArrow.Struct([
        new cjsArrow.Field("k", new cjsArrow.Int32(), true),
        new cjsArrow.Field(
          "xs",
          new cjsArrow.List(new cjsArrow.Field("item", new cjsArrow.Int32(), true)),
          true,
        ),
      ]),
    );
    const withNested = foreign.assign(cjsArrow.makeTable({ nested: nested.data[0] as never }));
    // a bare shape with no class at all exercises the duck-typed path
    const shaped = {
      schema: withNested.schema,
      batches: withNested.batches,
      numRows: withNested.numRows,
    };
    for (const value of [withNested, shaped]) {
      const path = join(dir, "foreign.arrow");
      await writeArrowFile(path, normalizeComputeResult(value, "docs"));
      expect(tableToRows(await readArrowFile(path))).toEqual([
        { n: 1.5, s: "a", big: 2n ** 60n, at: new Date(0), nested: { k: 1, xs: [1, 2] } },
        { n: 2.5, s: "b", big: 3, at: new Date(1000), nested: { k: 2, xs: [] } },
      ]);
    }
  });

  it("rejects anything that is neither rows nor a Table, saying what it got", () => {
    const cases: Array<[unknown, string]> = [
      [() => [], "a function"],
      [undefined, "undefined"],
      ["rows", "a string"],
      [{ id: "d1" }, "an object"],
      [Promise.resolve([]), "a Promise"],
      [42, "a number"],
    ];
    for (const [value, described] of cases) {
      const error = strataErrorOf(() => normalizeComputeResult(value, "x"));
      expect(error.code).toBe("bad_value");
      expect(error.message).toMatch(
        new RegExp(
          `^asset "x" returned ${described}; compute must return an array of row objects or an Arrow Table`,
        ),
      );
    }
    expect(strataErrorOf(() => normalizeComputeResult(Promise.resolve([]), "x")).message).toContain(
      "await it",
    );
  });

  it("refuses a Table-shaped value whose type contains itself in one line, without a stack overflow", () => {
    const type: Record<string, unknown> = { typeId: 13 };
    const field = { name: "x", type, nullable: true, metadata: new Map() };
    type.children = [field];
    const shaped = { numRows: 1, batches: [], schema: { fields: [field] } };
    const error = strataErrorOf(() => normalizeComputeResult(shaped, "docs"));
    expect(error.code).toBe("bad_value");
    expect(error.message).toMatch(
      /^asset "docs" returned an Arrow Table that could not be read \([^\n]*\); return rows/,
    );
  });

  it("names the column and row of a malformed row", () => {
    const error = strataErrorOf(() => normalizeComputeResult([{ a: 1 }, { a: "b" }], "x"));
    expect(error.code).toBe("bad_value");
    expect(error.message).toContain(
      'asset "x" column "a" has a number in row 0 and a string in row 1',
    );
  });
});

describe("writeArrowFile and readArrowFile", () => {
  it("writes the Arrow IPC file format that tableFromIPC reads", async () => {
    const path = join(dir, "nested", "deeper", "value.arrow");
    const written = rowsToTable(
      [
        { id: "d1", n: 1, meta: { a: [1] } },
        { id: null, n: 2 },
      ],
      "docs",
    );
    const { bytes } = await writeArrowFile(path, written);
    const contents = await readFile(path);
    expect(Buffer.from(tableToIPC(written, "file")).equals(contents)).toBe(true);
    expect(contents.subarray(0, 6).toString("latin1")).toBe("ARROW1");
    expect(contents.subarray(-6).toString("latin1")).toBe("ARROW1");
    expect(bytes).toBe(contents.length);
    expect((await stat(path)).size).toBe(bytes);
    const table = tableFromIPC(contents);
    expect(table.numRows).toBe(2);
    expect(table.getChild("id")?.get(0)).toBe("d1");
  });

  it("leaves no temporary files behind and replaces an existing file whole", async () => {
    const path = join(dir, "value.arrow");
    await writeArrowFile(path, rowsToTable([{ v: 1 }], "docs"));
    await writeArrowFile(path, rowsToTable([{ v: 2 }, { v: 3 }], "docs"));
    const { readdir } = await import("node:fs/promises");
    expect(await readdir(dir)).toEqual(["value.arrow"]);
    expect(tableToRows(await readArrowFile(path))).toEqual([{ v: 2 }, { v: 3 }]);
  });

  it("writes again into a directory that was removed after an earlier write", async () => {
    const folder = join(dir, "asset", "__all__");
    await writeArrowFile(join(folder, "m1.arrow"), rowsToTable([{ v: 1 }], "docs"));
    await rm(join(dir, "asset"), { recursive: true });
    await writeArrowFile(join(folder, "m2.arrow"), rowsToTable([{ v: 2 }], "docs"));
    expect(tableToRows(await readArrowFile(join(folder, "m2.arrow")))).toEqual([{ v: 2 }]);
  });

  it("writes a large value in chunks that reads back whole", async () => {
    const rows = Array.from({ length: 3_000 }, (_, i) => ({ i, text: "x".repeat(200) }));
    const path = join(dir, "large", "value.arrow");
    const { bytes } = await writeArrowFile(path, rowsToTable(rows, "docs"));
    expect(bytes).toBeGreaterThan(256 * 1024);
    expect((await stat(path)).size).toBe(bytes);
    expect(tableToRows(await readArrowFile(path))).toEqual(rows);
  });

  it("reports a missing file as upstream_missing and a non-Arrow file as bad_value", async () => {
    await expect(readArrowFile(join(dir, "absent.arrow"))).rejects.toMatchObject({
      code: "upstream_missing",
    });
    const path = join(dir, "junk.arrow");
    await writeFile(path, "id,name\n1,a\n");
    await expect(readArrowFile(path)).rejects.toMatchObject({ code: "bad_value" });
  });

  it.skipIf(!PYARROW)("writes files that pyarrow reads", async () => {
    const path = join(dir, "py.arrow");
    await writeArrowFile(
      path,
      rowsToTable(
        [
          { id: "d1", n: 1, f: 0.5, at: new Date("2026-01-01T00:00:00Z"), meta: { a: 1 } },
          { id: "d2", n: null, f: 1.5, at: null, meta: null },
        ],
        "docs",
      ),
    );
    const script = [
      "import json, sys, pyarrow as pa",
      "t = pa.ipc.open_file(sys.argv[1]).read_all()",
      "print(json.dumps({'rows': t.num_rows, 'schema': [[f.name, str(f.type)] for f in t.schema],",
      "  'id': t.column('id').to_pylist(), 'n': t.column('n').to_pylist()}))",
    ].join("\n");
    const out = JSON.parse(execFileSync("python3", ["-c", script, path], { encoding: "utf8" }));
    expect(out).toEqual({
      rows: 2,
      schema: [
        ["id", "string"],
        ["n", "double"],
        ["f", "double"],
        ["at", "timestamp[ms, tz=UTC]"],
        ["meta", "string"],
      ],
      id: ["d1", "d2"],
      n: [1, null],
    });
  });
});

describe("storagePath", () => {
  it("nests the asset key, then the partition or __all__, then the materialization id", () => {
    expect(storagePath("/p/.strata/storage", "raw/documents", null, "m1")).toBe(
      "/p/.strata/storage/raw/documents/__all__/m1.arrow",
    );
    expect(storagePath("/root", "analyses", "2026-01-01-05:00", "abc-123")).toBe(
      "/root/analyses/2026-01-01-05:00/abc-123.arrow",
    );
  });

  it("rejects partition keys that could escape the asset's directory", () => {
    for (const partition of ["../x", "a/b", "a\\b", "..", ".", "", "a\0b"]) {
      const error = strataErrorOf(() => storagePath("/root", "docs", partition, "m1"));
      expect(error.code).toBe("bad_partition");
      expect(error.message).toContain('of asset "docs" cannot name a directory');
    }
  });

  it("rejects unsafe materialization ids and malformed asset keys", () => {
    for (const id of ["../m1", "a/b", "a\\b", "", "a\0"]) {
      expect(strataErrorOf(() => storagePath("/root", "docs", null, id)).code).toBe("bad_value");
    }
    for (const key of ["../docs", "a//b", "/abs", "a/../b"]) {
      expect(strataErrorOf(() => storagePath("/root", key, null, "m1")).code).toBe("invalid_key");
    }
  });
});

describe("storageKey, storedValuePath and resolveStorageRoot", () => {
  it("records a value's path relative to the storage root, '/'-separated", () => {
    expect(storageKey("raw/documents", null, "m1")).toBe("raw/documents/__all__/m1.arrow");
    expect(storageKey("analyses", "en", "m2")).toBe("analyses/en/m2.arrow");
    expect(strataErrorOf(() => storageKey("docs", "../x", "m1")).code).toBe("bad_partition");
  });

  it("finds a relative path under the root, and an absolute one (earlier versions) as it is", () => {
    expect(storedValuePath("/mnt/strata", "raw/documents/__all__/m1.arrow")).toBe(
      "/mnt/strata/raw/documents/__all__/m1.arrow",
    );
    const old = "/srv/app/.strata/storage/raw/documents/__all__/m0.arrow";
    expect(storedValuePath("/mnt/strata", old)).toBe(old);
  });

  it("takes STRATA_STORAGE, then the project's storage.root, then .strata/storage", () => {
    const storage = { root: "values" };
    expect(resolveStorageRoot("/srv/app")).toBe("/srv/app/.strata/storage");
    expect(resolveStorageRoot("/srv/app", { storage })).toBe("/srv/app/values");
    expect(resolveStorageRoot("/srv/app", { storage: { root: "/mnt/v" } })).toBe("/mnt/v");
    expect(resolveStorageRoot("/srv/app", { storage, env: { STRATA_STORAGE: "/mnt/s" } })).toBe(
      "/mnt/s",
    );
    expect(resolveStorageRoot("/srv/app", { env: { STRATA_STORAGE: "shared" } })).toBe(
      "/srv/app/shared",
    );
    // an empty variable is unset
    expect(resolveStorageRoot("/srv/app", { storage, env: { STRATA_STORAGE: " " } })).toBe(
      "/srv/app/values",
    );
  });
});
