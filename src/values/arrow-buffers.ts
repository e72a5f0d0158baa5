import { Binary, Bool, type Data, Float64, makeData } from "apache-arrow";

// The Arrow buffers of one column, built in one pass over its cells (a hole or `undefined` is
// null), for rowsToTable.

const TWO_POW_32 = 2 ** 32;

/** A column's nulls: the count and the validity bitmap, absent when nothing is null. */
export interface Validity {
  nullCount: number;
  nullBitmap: Uint8Array | undefined;
}

/** Builds the validity bitmap (bit set = valid) in one pass; undefined when nothing is null. */
export function validityOf(values: ReadonlyArray<unknown>, length: number): Validity {
  const bitmap = new Uint8Array((length + 7) >> 3);
  let nullCount = 0;
  for (let i = 0; i < length; i++) {
    if (values[i] === undefined) nullCount++;
    else bitmap[i >> 3] = (bitmap[i >> 3] as number) | (1 << (i & 7));
  }
  return { nullCount, nullBitmap: nullCount === 0 ? undefined : bitmap };
}

/** A Binary column of Uint8Array cells. */
export function buildBinary(values: ReadonlyArray<unknown>, length: number): Data<Binary> {
  const valueOffsets = new Int32Array(length + 1);
  let total = 0;
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value !== undefined) total += (value as Uint8Array).byteLength;
    valueOffsets[i + 1] = total;
  }
  const data = new Uint8Array(total);
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value !== undefined) data.set(value as Uint8Array, valueOffsets[i] as number);
  }
  return makeData({
    type: new Binary(),
    length,
    valueOffsets,
    data,
    ...validityOf(values, length),
  });
}

/** A Float64 column of number cells. */
export function buildFloat64(values: ReadonlyArray<unknown>, length: number): Data<Float64> {
  const data = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value !== undefined) data[i] = value as number;
  }
  return makeData({ type: new Float64(), length, data, ...validityOf(values, length) });
}

/**
 * Builds Int64 cells from safe integers without allocating a bigint per cell: each value is
 * written as two 32-bit halves (Arrow buffers are little-endian, as is every host Node runs on).
 */
export function int64Buffers(
  values: ReadonlyArray<unknown>,
  length: number,
  toNumber: (value: unknown, row: number) => number,
): Validity & { data: BigInt64Array } {
  const words = new Uint32Array(length * 2);
  for (let i = 0; i < length; i++) {
    const value = values[i];
    if (value === undefined) continue;
    const n = toNumber(value, i);
    const high = Math.floor(n / TWO_POW_32);
    words[2 * i] = n - high * TWO_POW_32;
    words[2 * i + 1] = high; // a negative high word wraps to its two's complement
  }
  return { data: new BigInt64Array(words.buffer, 0, length), ...validityOf(values, length) };
}

/** A Bool column of boolean cells, one bit each. */
export function buildBool(values: ReadonlyArray<unknown>, length: number): Data<Bool> {
  const data = new Uint8Array((length + 7) >> 3);
  for (let i = 0; i < length; i++) {
    if (values[i] === true) data[i >> 3] = (data[i >> 3] as number) | (1 << (i & 7));
  }
  return makeData({ type: new Bool(), length, data, ...validityOf(values, length) });
}
