import { readFile } from "node:fs/promises";

/**
 * Reads a CSV file with a header row into one object per line (RFC 4180: quoted fields may hold
 * commas, newlines and doubled quotes). Small on purpose: an example should not need a CSV library.
 *
 * @example
 * const rows = await readCsv(new URL("../data/documents.csv", import.meta.url));
 */
export async function readCsv(file: URL | string): Promise<Record<string, string>[]> {
  const text = await readFile(file, "utf8");
  const records: string[][] = [];
  let record: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      record.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      record.push(field);
      records.push(record);
      record = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field !== "" || record.length > 0) records.push([...record, field]);
  const [header, ...rows] = records;
  if (header === undefined) return [];
  return rows.map((cells) => Object.fromEntries(header.map((name, i) => [name, cells[i] ?? ""])));
}
