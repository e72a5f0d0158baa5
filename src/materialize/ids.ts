import { randomBytes } from "node:crypto";

/**
 * A UUIDv7: time-ordered, so run and materialization ids sort by creation and index well.
 *
 * @example
 * const runId = newId(); // "019abf3e-8c1a-7d2e-9f30-4b5c6d7e8f90"
 */
export function newId(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70; // version 7
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
