import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { join, relative, sep } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";

// A gzipped POSIX tar (ustar) of a directory of plain files and folders: what `tar czf` writes
// and reads, so an archive can be looked into with standard tools. Enough of the format for a
// database's data directory: no links, no extended headers.

const BLOCK = 512;

/** One entry of an archive: a folder (no data) or a file. */
interface Entry {
  readonly path: string;
  readonly mode: number;
  readonly data?: Uint8Array;
}

/**
 * Packs the folders and files under `dir` (paths relative to it, modes kept) into a gzipped tar.
 *
 * @example
 * writeFileSync("data.tar.gz", packDirectory(".strata/db"));
 */
export function packDirectory(dir: string): Buffer {
  const blocks: Uint8Array[] = [];
  const visit = (folder: string) => {
    for (const name of readdirSync(folder).sort()) {
      const path = join(folder, name);
      const stat = statSync(path);
      const rel = relative(dir, path).split(sep).join("/");
      if (stat.isDirectory()) {
        blocks.push(header({ path: `${rel}/`, mode: stat.mode & 0o7777 }, 0, "5"));
        visit(path);
      } else if (stat.isFile()) {
        const data = readFileSync(path);
        blocks.push(header({ path: rel, mode: stat.mode & 0o7777 }, data.length, "0"));
        blocks.push(data, new Uint8Array(padding(data.length)));
      } else {
        throw new Error(`cannot pack ${path}: not a file or a folder`);
      }
    }
  };
  visit(dir);
  blocks.push(new Uint8Array(BLOCK * 2));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}

/**
 * Unpacks a gzipped tar written by {@link packDirectory} into `dir` (created; it should not
 * exist yet), keeping the modes.
 *
 * @example
 * unpackDirectory(readFileSync("data.tar.gz"), ".strata/db");
 */
export function unpackDirectory(archive: Uint8Array, dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const entry of readEntries(gunzipSync(archive))) {
    const path = join(dir, ...entry.path.split("/").filter((p) => p !== ""));
    if (relative(dir, path).startsWith("..")) throw new Error(`bad path in archive: ${entry.path}`);
    if (entry.data === undefined) {
      mkdirSync(path, { recursive: true, mode: entry.mode });
      continue;
    }
    const fd = openSync(path, "wx", entry.mode);
    try {
      for (let at = 0; at < entry.data.length; ) {
        at += writeSync(fd, entry.data, at, entry.data.length - at);
      }
    } finally {
      closeSync(fd);
    }
  }
}

function* readEntries(tar: Buffer): Generator<Entry> {
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const block = tar.subarray(at, at + BLOCK);
    if (block.every((b) => b === 0)) return;
    const name = text(block, 0, 100);
    const prefix = text(block, 345, 155);
    const path = prefix === "" ? name : `${prefix}/${name}`;
    const mode = octal(block, 100, 8);
    const size = octal(block, 124, 12);
    const type = String.fromCharCode(block[156]!);
    at += BLOCK;
    if (type === "5") {
      yield { path, mode };
    } else if (type === "0" || type === "\0") {
      yield { path, mode, data: tar.subarray(at, at + size) };
    } else {
      throw new Error(`unsupported entry type "${type}" in archive: ${path}`);
    }
    at += size + padding(size);
  }
}

function header(entry: Entry, size: number, type: "0" | "5"): Uint8Array {
  const block = Buffer.alloc(BLOCK);
  let name = entry.path;
  let prefix = "";
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf("/", name.length - 2);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(name) > 100 || Buffer.byteLength(prefix) > 155) {
      throw new Error(`path too long for the archive: ${entry.path}`);
    }
  }
  block.write(name, 0, 100, "utf8");
  block.write(field(entry.mode, 8), 100, "ascii");
  block.write(field(0, 8), 108, "ascii"); // uid
  block.write(field(0, 8), 116, "ascii"); // gid
  block.write(field(size, 12), 124, "ascii");
  block.write(field(0, 12), 136, "ascii"); // mtime: reproducible archives
  block.write("        ", 148, "ascii"); // checksum, counted as spaces
  block.write(type, 156, "ascii");
  block.write("ustar\u000000", 257, "ascii");
  block.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, "0")}\u0000 `, 148, "ascii");
  return block;
}

function field(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\u0000`;
}

function text(block: Uint8Array, offset: number, length: number): string {
  const bytes = block.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return Buffer.from(end < 0 ? bytes : bytes.subarray(0, end)).toString("utf8");
}

function octal(block: Uint8Array, offset: number, length: number): number {
  const value = text(block, offset, length).trim();
  return value === "" ? 0 : Number.parseInt(value, 8);
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
