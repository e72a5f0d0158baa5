import {
  Binary,
  BinaryView,
  Bool,
  Data,
  DataType,
  Date_,
  Decimal,
  Dictionary,
  Duration,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float,
  Int,
  Interval,
  LargeBinary,
  LargeList,
  LargeUtf8,
  List,
  Map_,
  makeData,
  Null,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Time,
  Timestamp,
  Type,
  Union,
  Utf8,
  Utf8View,
  Vector,
} from "apache-arrow";
import { StrataError } from "../errors.js";
import { oneLineMessage } from "../util/error-message.js";
import { describeType, rowsToTable } from "./arrow-encoder.js";

/**
 * Turns what an asset's `compute` returned into the Arrow {@link Table} that is stored.
 *
 * An array of row objects goes through {@link rowsToTable}; an Arrow `Table` is kept as it is
 * (also one made by another copy of apache-arrow, which is recognized by its shape and rewrapped).
 *
 * @throws StrataError `bad_value` for anything else: a function, `undefined`, a string, a plain
 *   object, a Promise that was not awaited, or rows that {@link rowsToTable} rejects.
 *
 * @example
 * const table = normalizeComputeResult([{ id: "d1" }], "raw/documents");
 */
export function normalizeComputeResult(value: unknown, assetKey: string): Table {
  if (Array.isArray(value)) return rowsToTable(value, assetKey);
  // arrow's instanceof also accepts a Table from another copy of apache-arrow; only our own
  // copy's Tables are safe to write as they are
  if (value instanceof Table && Object.getPrototypeOf(value) === Table.prototype) return value;
  if (looksLikeTable(value)) {
    try {
      return adoptTable(value);
    } catch (error) {
      if (error instanceof StrataError) throw error;
      // a hostile or broken Table-shaped value (a type that contains itself overflows the stack)
      throw new StrataError(
        "bad_value",
        `asset "${assetKey}" returned an Arrow Table that could not be read (${oneLineMessage(error)}); return rows or a Table made by apache-arrow`,
        { cause: error },
      );
    }
  }
  const hint =
    typeof (value as { then?: unknown } | null | undefined)?.then === "function"
      ? "; await it before returning"
      : describeType(value) === "an object"
        ? "; wrap a single row in an array: [row]"
        : "";
  throw new StrataError(
    "bad_value",
    `asset "${assetKey}" returned ${describeType(value)}; compute must return an array of row objects or an Arrow Table${hint}`,
  );
}

interface TableLike {
  readonly schema: {
    readonly fields: ReadonlyArray<Field>;
    readonly metadata?: Map<string, string>;
  };
  readonly batches: ReadonlyArray<{ readonly data: Data }>;
  readonly numRows: number;
}

/** A Table by its shape: one made by another copy of apache-arrow, whatever its version. */
function looksLikeTable(value: unknown): value is TableLike {
  if (typeof value !== "object" || value === null) return false;
  const candidate = value as Partial<Record<keyof TableLike, unknown>>;
  const schema = candidate.schema as { fields?: unknown } | undefined;
  return (
    typeof candidate.numRows === "number" &&
    Array.isArray(candidate.batches) &&
    typeof schema === "object" &&
    schema !== null &&
    Array.isArray(schema.fields)
  );
}

/** This copy's type class for each type id; a foreign type is re-homed onto its prototype. */
const TYPE_PROTOTYPES = new Map<Type, object>([
  [Type.Null, Null.prototype],
  [Type.Int, Int.prototype],
  [Type.Float, Float.prototype],
  [Type.Binary, Binary.prototype],
  [Type.Utf8, Utf8.prototype],
  [Type.Bool, Bool.prototype],
  [Type.Decimal, Decimal.prototype],
  [Type.Date, Date_.prototype],
  [Type.Time, Time.prototype],
  [Type.Timestamp, Timestamp.prototype],
  [Type.Interval, Interval.prototype],
  [Type.List, List.prototype],
  [Type.Struct, Struct.prototype],
  [Type.Union, Union.prototype],
  [Type.FixedSizeBinary, FixedSizeBinary.prototype],
  [Type.FixedSizeList, FixedSizeList.prototype],
  [Type.Map, Map_.prototype],
  [Type.Duration, Duration.prototype],
  [Type.LargeBinary, LargeBinary.prototype],
  [Type.LargeUtf8, LargeUtf8.prototype],
  [Type.LargeList, LargeList.prototype],
  [Type.BinaryView, BinaryView.prototype],
  [Type.Utf8View, Utf8View.prototype],
  [Type.Dictionary, Dictionary.prototype],
]);

/**
 * Rewraps a Table from another copy of apache-arrow in this copy's classes, sharing its buffers.
 *
 * Writing a foreign Table directly is not safe: arrow compares types with `instanceof`, which
 * fails across copies, and dictionary columns then come out as a file no reader can open.
 */
function adoptTable(foreign: TableLike): Table {
  const fields = foreign.schema.fields.map(adoptField);
  const schema = new Schema(fields, foreign.schema.metadata);
  const struct = new Struct(fields);
  const batches = foreign.batches.map((batch) => {
    const data = batch.data;
    return new RecordBatch(
      schema,
      makeData({
        type: struct,
        length: data.length,
        nullCount: 0,
        children: data.children.map(adoptData),
      }),
    );
  });
  return new Table(schema, batches);
}

function adoptField(field: Field): Field {
  return new Field(field.name, adoptType(field.type), field.nullable, field.metadata);
}

function adoptType(type: DataType): DataType {
  // DataType has no cross-copy instanceof, so this is true for our own types only
  if (isOwnType(type)) return type;
  const prototype = TYPE_PROTOTYPES.get(type.typeId);
  if (prototype === undefined) {
    throw new StrataError(
      "bad_value",
      `arrow type "${String(type)}" is not supported by this version of apache-arrow; cast the column to a common type`,
    );
  }
  const own: Record<string, unknown> = { ...type };
  if (Array.isArray(own.children)) own.children = (own.children as Field[]).map(adoptField);
  if (own.dictionary !== undefined) own.dictionary = adoptType(own.dictionary as DataType);
  if (own.indices !== undefined) own.indices = adoptType(own.indices as DataType);
  return Object.assign(Object.create(prototype) as DataType, own);
}

function isOwnType(type: DataType): boolean {
  return type instanceof DataType;
}

function adoptData(data: Data): Data {
  return new Data(
    adoptType(data.type),
    data.offset,
    data.length,
    data.nullCount,
    [data.valueOffsets, data.values, data.nullBitmap, data.typeIds],
    data.children.map(adoptData),
    data.dictionary === undefined ? undefined : new Vector(data.dictionary.data.map(adoptData)),
    data.variadicBuffers,
  );
}
