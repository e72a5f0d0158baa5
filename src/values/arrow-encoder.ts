import {
  Binary,
  Bool,
  type Data,
  type DataType,
  Field,
  Float64,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  Utf8,
} from "apache-arrow";
import { StrataError } from "../errors.js";
import { oneLineMessage } from "../util/error-message.js";
import { buildBinary, buildBool, buildFloat64, int64Buffers, validityOf } from "./arrow-buffers.js";
import { JsonTextError, toJsonText } from "./json-text.js";

/**
 * One row of an asset's value: a plain object from column name to cell.
 *
 * @example
 * const row: Row = { id: "d1", text: "hello", score: 0.5 };
 */
export type Row = Record<string, unknown>;

/**
 * The Arrow field-metadata key that says how a column's cells are encoded beyond their Arrow type.
 *
 * Values are {@link JSON_ENCODING} and {@link BIGINT_ENCODING}.
 *
 * @example
 * table.schema.fields[0]?.metadata.get(ENCODING_METADATA_KEY); // "json"
 */
export const ENCODING_METADATA_KEY = "strata.encoding";

/**
 * Marks a Utf8 column whose cells are JSON text of nested objects or arrays.
 *
 * @example
 * field.metadata.get(ENCODING_METADATA_KEY) === JSON_ENCODING; // decode with JSON.parse
 */
export const JSON_ENCODING = "json";

/**
 * Marks an Int64 column that came from JS `bigint` cells, so it reads back as `bigint` always.
 *
 * @example
 * field.metadata.get(ENCODING_METADATA_KEY) === BIGINT_ENCODING; // cells stay bigint
 */
export const BIGINT_ENCODING = "bigint";

/** The kinds of cell a column can hold; a column holds one kind, plus nulls. */
type Category = "string" | "number" | "bigint" | "boolean" | "date" | "binary" | "json";

interface ColumnState {
  readonly name: string;
  /** Cells by row index; a hole or `undefined` is null. */
  readonly values: unknown[];
  category: Category | null;
  /** The first non-null cell's row and type name, for error messages. */
  firstRow: number;
  firstType: string;
}

const MAX_INT32 = 2 ** 31 - 1;
const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

/**
 * Converts plain row objects to an Arrow {@link Table}, inferring the schema from the cells.
 *
 * Columns are the union of the rows' own keys in first-seen order; a missing key, `null` and
 * `undefined` are all stored as null. Every column is nullable. Types map as:
 *
 * - `string` → Utf8
 * - `number` → Float64 always, whole or not, so a column's type does not change from one
 *   materialization to the next with its values (Int64 columns of earlier versions still read
 *   back as `number`)
 * - `bigint` → Int64 with field metadata `{"strata.encoding":"bigint"}` (read back as `bigint`)
 * - `boolean` → Bool
 * - `Date` → Timestamp(millisecond, "UTC"), which pyarrow, polars and DuckDB read as a timestamp
 * - `Uint8Array` (and `Buffer`) → Binary
 * - nested objects and arrays → JSON text in a Utf8 column with field metadata
 *   `{"strata.encoding":"json"}`, decoded back to objects by {@link tableToRows}; nested values
 *   follow `JSON.stringify` (a nested Date becomes its ISO string, `undefined` is dropped), and
 *   what it would drop, mangle or overflow on is refused (see {@link toJsonText})
 * - a column of only nulls → Utf8, every reader's safest choice
 *
 * Cells are written straight into Arrow buffers in one pass per column, so the only other copy
 * of the data alive is the caller's rows.
 *
 * @throws StrataError `bad_value`, with a one-line message naming the asset, column and row, when
 *   a row is not a plain object or cannot be read, a column mixes kinds (say a number and a
 *   string), or a cell cannot be stored (a function, a Map, an invalid Date, a nested reference
 *   cycle, bigint or function, nesting deeper than 512 levels).
 *
 * @example
 * const table = rowsToTable([{ id: "d1", score: 0.5 }, { id: "d2", score: null }], "scores");
 * table.numRows; // 2
 */
export function rowsToTable(rows: ReadonlyArray<object>, assetKey: string): Table {
  const length = rows.length;
  const columns = new Map<string, ColumnState>();
  for (let i = 0; i < length; i++) {
    const row: unknown = rows[i];
    // a Date, Map or typed array has no own keys to store: refuse it rather than store {}
    if (
      typeof row !== "object" ||
      row === null ||
      categoryOf(row) !== "json" ||
      Array.isArray(row)
    ) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}" row ${i} is ${describeType(row)}; each row must be a plain object such as { id: "d1" }`,
      );
    }
    const record = row as Record<string, unknown>;
    let name: string | undefined;
    try {
      for (name of Object.keys(record)) {
        const value = record[name];
        let column = columns.get(name);
        if (column === undefined) {
          column = { name, values: new Array(length), category: null, firstRow: -1, firstType: "" };
          columns.set(name, column);
        }
        if (value === null || value === undefined) continue;
        column.values[i] = value;
        observe(column, value, i, assetKey);
      }
    } catch (error) {
      if (error instanceof StrataError) throw error;
      // a getter or a Proxy trap of the row threw
      const where = name === undefined ? "" : ` column "${name}"`;
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}"${where} row ${i} could not be read (${oneLineMessage(error)}); return rows of plain data`,
        { cause: error },
      );
    }
  }

  const fields: Field[] = [];
  const children: Data[] = [];
  for (const column of columns.values()) {
    const { type, data, encoding } = buildColumn(column, length, assetKey);
    const metadata =
      encoding === undefined ? undefined : new Map([[ENCODING_METADATA_KEY, encoding]]);
    fields.push(new Field(column.name, type, true, metadata));
    children.push(data);
  }
  const schema = new Schema(fields);
  if (length === 0) return new Table(schema);
  const struct = makeData({ type: new Struct(fields), length, nullCount: 0, children });
  return new Table(schema, [new RecordBatch(schema, struct)]);
}

function observe(column: ColumnState, value: unknown, row: number, assetKey: string): void {
  const category = categoryOf(value);
  if (category === null) {
    throw new StrataError(
      "bad_value",
      `asset "${assetKey}" column "${column.name}" row ${row} holds ${describeType(value)}, which cannot be stored; use a string, number, bigint, boolean, Date, Uint8Array, plain object or array`,
    );
  }
  if (column.category === category) return;
  if (column.category === null) {
    column.category = category;
    column.firstRow = row;
    column.firstType = describeType(value);
    return;
  }
  throw new StrataError(
    "bad_value",
    `asset "${assetKey}" column "${column.name}" has ${column.firstType} in row ${column.firstRow} and ${describeType(value)} in row ${row}; give every row the same type in a column (or null)`,
  );
}

/** The category of a non-null cell, or null when it cannot be stored. */
function categoryOf(value: unknown): Category | null {
  switch (typeof value) {
    case "string":
      return "string";
    case "number":
      return "number";
    case "bigint":
      return "bigint";
    case "boolean":
      return "boolean";
    case "object":
      if (value instanceof Date) return "date";
      if (value instanceof Uint8Array) return "binary";
      // these serialize to "{}" or index maps under JSON, silently losing the data
      if (value instanceof Map || value instanceof Set || value instanceof ArrayBuffer) return null;
      if (ArrayBuffer.isView(value)) return null;
      return "json";
    default:
      return null;
  }
}

/**
 * A value's type in words, for error messages.
 *
 * @example
 * describeType([1]); // "an array"
 * describeType(new Date()); // "a Date"
 * describeType(Promise.resolve()); // "a Promise"
 */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  switch (typeof value) {
    case "object": {
      if (Array.isArray(value)) return "an array";
      if (typeof (value as { then?: unknown }).then === "function") return "a Promise";
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto === Object.prototype || proto === null) return "an object";
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === "string" && name !== "" ? `a ${name}` : "an object";
    }
    case "undefined":
      return "undefined";
    default:
      return `a ${typeof value}`;
  }
}

interface BuiltColumn {
  readonly type: DataType;
  readonly data: Data;
  readonly encoding?: string;
}

function buildColumn(column: ColumnState, length: number, assetKey: string): BuiltColumn {
  const { values } = column;
  switch (column.category) {
    case null:
    case "string":
      return { type: new Utf8(), data: buildUtf8(column, length, assetKey) };
    case "json":
      encodeJson(column, length, assetKey);
      return {
        type: new Utf8(),
        data: buildUtf8(column, length, assetKey),
        encoding: JSON_ENCODING,
      };
    case "number":
      // never Int64 for whole numbers: the type would then follow the values of each run
      return { type: new Float64(), data: buildFloat64(values, length) };
    case "bigint":
      return {
        type: new Int64(),
        data: buildBigInt64(column, length, assetKey),
        encoding: BIGINT_ENCODING,
      };
    case "boolean":
      return { type: new Bool(), data: buildBool(values, length) };
    case "date": {
      const type = new TimestampMillisecond("UTC");
      const buffers = int64Buffers(values, length, (v, row) => {
        const ms = (v as Date).getTime();
        if (Number.isNaN(ms)) {
          throw new StrataError(
            "bad_value",
            `asset "${assetKey}" column "${column.name}" row ${row} holds an invalid Date; store a valid Date or null`,
          );
        }
        return ms;
      });
      return { type, data: makeData({ type, length, ...buffers }) };
    }
    case "binary":
      return { type: new Binary(), data: buildBinary(values, length) };
  }
}

/** Replaces nested objects and arrays by their JSON text, in our own column array. */
function encodeJson(column: ColumnState, length: number, assetKey: string): void {
  const { values } = column;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value === undefined) continue;
    try {
      // a toJSON() that returns undefined stores null
      values[i] = toJsonText(value);
    } catch (error) {
      if (!(error instanceof JsonTextError)) throw error;
      const at = error.path === "" ? "" : ` at ${column.name}${error.path}`;
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}" column "${column.name}" row ${i} holds ${error.what}${at}, which cannot be stored as JSON; ${error.advice}`,
        { cause: error },
      );
    }
  }
}

function buildUtf8(column: ColumnState, length: number, assetKey: string): Data<Utf8> {
  const { values } = column;
  const valueOffsets = new Int32Array(length + 1);
  let total = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value !== undefined) total += Buffer.byteLength(value as string, "utf8");
    if (total > MAX_INT32) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}" column "${column.name}" holds more than 2 GiB of text; split the asset into partitions`,
      );
    }
    valueOffsets[i + 1] = total;
  }
  // allocUnsafeSlow: never a slice of Node's shared pool, and every byte is written below
  const bytes = Buffer.allocUnsafeSlow(total);
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value !== undefined) bytes.write(value as string, valueOffsets[i] as number, "utf8");
  }
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return makeData({ type: new Utf8(), length, valueOffsets, data, ...validityOf(values, length) });
}

function buildBigInt64(column: ColumnState, length: number, assetKey: string): Data<Int64> {
  const { values } = column;
  const data = new BigInt64Array(length);
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value === undefined) continue;
    const n = value as bigint;
    if (n < MIN_INT64 || n > MAX_INT64) {
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}" column "${column.name}" row ${i} holds ${n}n, outside the 64-bit integer range; store it as a string`,
      );
    }
    data[i] = n;
  }
  return makeData({ type: new Int64(), length, data, ...validityOf(values, length) });
}
