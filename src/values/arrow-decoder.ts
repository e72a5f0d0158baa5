import { DataType, type Field, type Table } from "apache-arrow";
import {
  BIGINT_ENCODING,
  ENCODING_METADATA_KEY,
  JSON_ENCODING,
  type Row,
} from "./arrow-encoder.js";

const MIN_SAFE_BIGINT = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);

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
