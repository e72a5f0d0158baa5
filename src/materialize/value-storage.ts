import { randomUUID } from "node:crypto";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
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
  RecordBatchFileWriter,
  Schema,
  Struct,
  Table,
  Time,
  Timestamp,
  Type,
  tableFromIPC,
  Union,
  Utf8,
  Utf8View,
  Vector,
} from "apache-arrow";
import { isValidAssetKey } from "../assets/asset-key.js";
import { StrataError } from "../errors.js";
import {
  BIGINT_ENCODING,
  describeType,
  ENCODING_METADATA_KEY,
  JSON_ENCODING,
  type Row,
  rowsToTable,
} from "./row-schema.js";

export { BIGINT_ENCODING, ENCODING_METADATA_KEY, JSON_ENCODING, type Row, rowsToTable };

/**
 * The directory name that stands for "no partition" in {@link storagePath}.
 *
 * @example
 * storagePath(".strata/storage", "raw/documents", null, "m1"); // .../raw/documents/__all__/m1.arrow
 */
export const UNPARTITIONED_DIR = "__all__";

/** The first bytes of every Arrow IPC file (the stream format has no magic). */
const ARROW_FILE_MAGIC = Buffer.from("ARROW1", "latin1");

const MIN_SAFE_BIGINT = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

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
  if (looksLikeTable(value)) return adoptTable(value);
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

/**
 * Writes `table` to `path` as an Arrow IPC **file** (the random-access format that pyarrow,
 * polars and DuckDB open directly; the same bytes as `tableToIPC(table, "file")`), creating
 * parent directories.
 *
 * The bytes go to a temporary file in the same directory and are then renamed onto `path`, so a
 * reader sees either no file or the whole file, never a torn one.
 *
 * @example
 * const { bytes } = await writeArrowFile("/tmp/strata/docs.arrow", rowsToTable(rows, "docs"));
 */
export async function writeArrowFile(path: string, table: Table): Promise<{ bytes: number }> {
  // the writer's chunks are views of the table's own buffers (plus padding and metadata), so
  // writing them with writev avoids the whole-file copy that tableToIPC would make
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of RecordBatchFileWriter.writeAll(table)) {
    chunks.push(chunk);
    bytes += chunk.byteLength;
  }
  const dir = dirname(path);
  const temp = `${path}.${process.pid}.${randomUUID()}.tmp`;
  // No fsync per file: a killed process loses nothing that was written, and the rename below
  // already keeps readers from ever seeing a torn file. Syncing each file made a trivial step
  // wait ~7 ms on disk.
  if (bytes <= SYNC_WRITE_MAX_BYTES) {
    // A small file is written synchronously: four thread-pool round trips cost a trivial step
    // more than the write itself, and the event loop waits microseconds.
    const whole = Buffer.concat(chunks, bytes);
    try {
      writeSmallFile(dir, temp, whole);
      renameSync(temp, path);
    } catch (error) {
      rmSync(temp, { force: true });
      throw error;
    }
    return { bytes };
  }
  await mkdir(dir, { recursive: true });
  knownDirs.add(dir);
  try {
    const handle = await open(temp, "w");
    try {
      const { bytesWritten } = await handle.writev(chunks);
      if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`);
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return { bytes };
}

/** Files up to this size are written without leaving the event loop. */
const SYNC_WRITE_MAX_BYTES = 256 * 1024;

/** Directories this process created or found, so a step does not ask the disk again. */
const knownDirs = new Set<string>();

function writeSmallFile(dir: string, file: string, bytes: Uint8Array): void {
  if (knownDirs.has(dir)) {
    try {
      writeFileSync(file, bytes);
      return;
    } catch (error) {
      // the directory was removed since (a prune, a cleanup): make it again
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      knownDirs.delete(dir);
    }
  }
  mkdirSync(dir, { recursive: true });
  knownDirs.add(dir);
  writeFileSync(file, bytes);
}

/**
 * Reads an Arrow IPC file written by {@link writeArrowFile} (or by pyarrow, polars, DuckDB).
 *
 * @throws StrataError `upstream_missing` when the file does not exist, `bad_value` when it is not
 *   an Arrow IPC file.
 *
 * @example
 * const rows = tableToRows(await readArrowFile("/tmp/strata/docs.arrow"));
 */
export async function readArrowFile(path: string): Promise<Table> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new StrataError(
        "upstream_missing",
        `stored value "${path}" does not exist; materialize the asset again to rewrite it`,
        { cause: error },
      );
    }
    throw error;
  }
  if (bytes.length < ARROW_FILE_MAGIC.length || !bytes.subarray(0, 6).equals(ARROW_FILE_MAGIC)) {
    throw new StrataError(
      "bad_value",
      `"${path}" is not an Arrow IPC file (it does not start with "ARROW1"); materialize the asset again to rewrite it`,
    );
  }
  try {
    return tableFromIPC(bytes);
  } catch (error) {
    throw new StrataError(
      "bad_value",
      `"${path}" is a damaged Arrow IPC file; materialize the asset again to rewrite it`,
      { cause: error },
    );
  }
}

/**
 * Converts an Arrow {@link Table} back to plain row objects, undoing {@link rowsToTable}'s encodings.
 *
 * JSON-encoded columns are parsed back to objects, Int64 cells become `number` when they are safe
 * integers (`bigint` otherwise, and always in columns that came from bigints), timestamps and
 * dates become `Date`, structs and lists from tables written elsewhere become objects and arrays.
 * Nulls come back as `null`, so a key missing from a row comes back as a `null` cell.
 *
 * @example
 * tableToRows(rowsToTable([{ id: "d1", tags: ["a"] }], "docs")); // [{ id: "d1", tags: ["a"] }]
 */
export function tableToRows(table: Table): Row[] {
  const length = table.numRows;
  const rows: Row[] = new Array(length);
  for (let i = 0; i < length; i++) rows[i] = {};
  const fields = table.schema.fields;
  for (let c = 0; c < fields.length; c++) {
    const field = fields[c];
    const vector = table.getChildAt(c);
    if (field === undefined || vector === null) continue;
    const decode = decoderForField(field);
    const name = field.name;
    // a "__proto__" column must become an own property, not the row's prototype
    const set =
      name === "__proto__"
        ? (row: Row, value: unknown) =>
            Object.defineProperty(row, name, {
              value,
              enumerable: true,
              writable: true,
              configurable: true,
            })
        : (row: Row, value: unknown) => {
            row[name] = value;
          };
    let i = 0;
    for (const cell of vector) {
      set(rows[i++] as Row, cell === null || cell === undefined ? null : decode(cell));
    }
  }
  return rows;
}

type Decoder = (cell: unknown) => unknown;

const identity: Decoder = (cell) => cell;

function decoderForField(field: Field): Decoder {
  const encoding = field.metadata.get(ENCODING_METADATA_KEY);
  if (encoding === JSON_ENCODING) return (cell) => JSON.parse(cell as string);
  if (encoding === BIGINT_ENCODING) return identity;
  return decoderForType(field.type);
}

function decoderForType(type: DataType): Decoder {
  if (DataType.isInt(type) && type.bitWidth === 64) return int64ToNumber;
  if (DataType.isTimestamp(type) || DataType.isDate(type))
    return (cell) => new Date(cell as number);
  if (DataType.isStruct(type)) {
    const children = type.children.map((child) => [child.name, decoderForField(child)] as const);
    return (cell) => {
      const source = cell as Record<string, unknown>;
      const out: Row = {};
      for (const [name, decode] of children) {
        const value = source[name];
        out[name] = value === null || value === undefined ? null : decode(value);
      }
      return out;
    };
  }
  if (DataType.isList(type) || DataType.isLargeList(type) || DataType.isFixedSizeList(type)) {
    const decode = decoderForField(type.children[0] as Field);
    return (cell) =>
      Array.from(cell as Iterable<unknown>, (v) =>
        v === null || v === undefined ? null : decode(v),
      );
  }
  return identity;
}

function int64ToNumber(cell: unknown): unknown {
  const n = cell as bigint;
  return n >= MIN_SAFE_BIGINT && n <= MAX_SAFE_BIGINT ? Number(n) : n;
}

/**
 * The file that holds one materialization's value:
 * `<storageRoot>/<asset key segments as directories>/<partition or __all__>/<materializationId>.arrow`.
 *
 * Partition keys may hold `:` (hourly partitions such as `2026-01-01-05:00`), but never a path
 * separator, `..` or NUL, so no key can point outside its asset's directory.
 *
 * @throws StrataError `invalid_key` for a malformed asset key, `bad_partition` for an unsafe
 *   partition key, `bad_value` for an unsafe materialization id.
 *
 * @example
 * storagePath(".strata/storage", "raw/documents", "en", "m1");
 * // ".strata/storage/raw/documents/en/m1.arrow"
 */
export function storagePath(
  storageRoot: string,
  assetKey: string,
  partitionKey: string | null,
  materializationId: string,
): string {
  if (!isValidAssetKey(assetKey)) {
    throw new StrataError(
      "invalid_key",
      `asset key "${assetKey}" is not valid; use segments of letters, digits, "_" and "-" joined by "/"`,
    );
  }
  if (partitionKey !== null && !isSafePathSegment(partitionKey)) {
    throw new StrataError(
      "bad_partition",
      `partition key ${JSON.stringify(partitionKey)} of asset "${assetKey}" cannot name a directory; remove "/", "\\", ".." and NUL characters from it`,
    );
  }
  if (!isSafePathSegment(materializationId)) {
    throw new StrataError(
      "bad_value",
      `materialization id ${JSON.stringify(materializationId)} cannot name a file; remove "/", "\\", ".." and NUL characters from it`,
    );
  }
  return join(
    storageRoot,
    ...assetKey.split("/"),
    partitionKey ?? UNPARTITIONED_DIR,
    `${materializationId}.arrow`,
  );
}

function isSafePathSegment(segment: string): boolean {
  return (
    segment !== "" &&
    segment !== "." &&
    !segment.includes("/") &&
    !segment.includes("\\") &&
    !segment.includes("..") &&
    !segment.includes("\0")
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
