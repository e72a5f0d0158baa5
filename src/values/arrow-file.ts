import { createHash } from "node:crypto";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { RecordBatchFileWriter, type Table, tableFromIPC } from "apache-arrow";
import { StrataError } from "../errors.js";
import { tempPathFor } from "./temp-file.js";

/** The first bytes of every Arrow IPC file (the stream format has no magic). */
const ARROW_FILE_MAGIC = Buffer.from("ARROW1", "latin1");

/** What {@link writeArrowFile} wrote. */
export interface WrittenArrowFile {
  readonly bytes: number;
  /** The SHA-256 of the file, in hex: what `sha256sum FILE` prints. */
  readonly sha256: string;
}

/** Options of {@link writeArrowFile}. */
export interface WriteArrowFileOptions {
  /**
   * Where the temporary file goes (default: next to `path`). A run writes every value through
   * one staging directory (`stagingDir`), so what a killed write leaves is found with one
   * directory read. On another filesystem than `path`, the write falls back to the default.
   */
  readonly tempDir?: string;
}

/**
 * Writes a Table as an Arrow IPC file and returns its size and SHA-256, which the caller records
 * so that a later read can tell the file was changed ({@link readArrowFile}).
 *
 * The bytes go to a temporary file ({@link tempPathFor}) that is then renamed onto `path`, so a
 * reader sees either no file or the whole file, never a torn one. What a writer killed mid-write
 * leaves is removed by `removeStaleTempFiles`.
 *
 * @example
 * const { bytes, sha256 } = await writeArrowFile("/tmp/strata/docs.arrow", rowsToTable(rows, "docs"));
 */
export async function writeArrowFile(
  path: string,
  table: Table,
  options: WriteArrowFileOptions = {},
): Promise<WrittenArrowFile> {
  // the writer's chunks are views of the table's own buffers (plus padding and metadata), so
  // writing them with writev avoids the whole-file copy that tableToIPC would make
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  // SHA-256 runs at over 1 GB/s with the CPU's SHA instructions: about 1 µs for a small value
  const hash = createHash("sha256");
  for await (const chunk of RecordBatchFileWriter.writeAll(table)) {
    chunks.push(chunk);
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  const written = { bytes, sha256: hash.digest("hex") };
  const dir = dirname(path);
  // No fsync per file: a killed process loses nothing that was written, and the rename below
  // already keeps readers from ever seeing a torn file. Syncing each file made a trivial step
  // wait ~7 ms on disk.
  // A small file is written synchronously: four thread-pool round trips cost a trivial step
  // more than the write itself, and the event loop waits microseconds.
  const whole = bytes <= SYNC_WRITE_MAX_BYTES ? Buffer.concat(chunks, bytes) : null;
  let tempDir = options.tempDir ?? dir;
  for (let attempt = 1; ; attempt++) {
    const temp = tempPathFor(path, tempDir);
    try {
      if (whole !== null) {
        ensureDirSync(tempDir);
        ensureDirSync(dir);
        writeFileSync(temp, whole);
        renameSync(temp, path);
      } else {
        await ensureDir(tempDir);
        await ensureDir(dir);
        await writeChunks(temp, chunks, bytes);
        await rename(temp, path);
      }
      return written;
    } catch (error) {
      if (whole !== null) rmSync(temp, { force: true });
      else await rm(temp, { force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (attempt >= 3) throw error;
      if (code === "ENOENT") {
        // a directory was removed since (a prune, a cleanup): make it again
        knownDirs.delete(tempDir);
        knownDirs.delete(dir);
      } else if (code === "EXDEV" && tempDir !== dir) {
        tempDir = dir;
      } else {
        throw error;
      }
    }
  }
}

/** Files up to this size are written without leaving the event loop. */
const SYNC_WRITE_MAX_BYTES = 256 * 1024;

/** Directories this process created or found, so a step does not ask the disk again. */
const knownDirs = new Set<string>();

function ensureDirSync(dir: string): void {
  if (knownDirs.has(dir)) return;
  mkdirSync(dir, { recursive: true });
  knownDirs.add(dir);
}

async function ensureDir(dir: string): Promise<void> {
  if (knownDirs.has(dir)) return;
  await mkdir(dir, { recursive: true });
  knownDirs.add(dir);
}

async function writeChunks(file: string, chunks: Uint8Array[], bytes: number): Promise<void> {
  const handle = await open(file, "w");
  try {
    const { bytesWritten } = await handle.writev(chunks);
    if (bytesWritten !== bytes) throw new Error(`short write: ${bytesWritten} of ${bytes} bytes`);
  } finally {
    await handle.close();
  }
}

/** The materialization a stored file holds, so errors can name it and the file can be checked. */
export interface StoredValue {
  readonly assetKey: string;
  readonly partitionKey: string | null;
  /** The SHA-256 recorded when the file was written; null (files of earlier versions): unchecked. */
  readonly sha256: string | null;
}

/**
 * Reads an Arrow IPC file written by {@link writeArrowFile} (or by pyarrow, polars, DuckDB).
 *
 * Given the `stored` materialization, the file's SHA-256 must match the recorded one, and every
 * error names the asset, the partition and the file and says how to rebuild it.
 *
 * @throws StrataError `upstream_missing` when the file does not exist, `value_corrupt` when its
 *   bytes are not the ones written, `bad_value` when it is not an Arrow IPC file.
 *
 * @example
 * const rows = tableToRows(await readArrowFile("/tmp/strata/docs.arrow"));
 */
export async function readArrowFile(path: string, stored?: StoredValue): Promise<Table> {
  const what =
    stored === undefined
      ? `stored value "${path}"`
      : `the stored value of ${describeStored(stored)} ("${path}")`;
  const fix =
    stored === undefined
      ? "materialize the asset again to rewrite it"
      : `materialize it again: strata materialize --select "${stored.assetKey}"${stored.partitionKey === null ? "" : ` --partition "${stored.partitionKey}"`}`;
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new StrataError("upstream_missing", `${what} does not exist; ${fix}`, {
        cause: error,
      });
    }
    throw error;
  }
  if (
    stored !== undefined &&
    stored.sha256 !== null &&
    createHash("sha256").update(bytes).digest("hex") !== stored.sha256
  ) {
    throw new StrataError(
      "value_corrupt",
      `${what} was changed after it was written (its SHA-256 no longer matches the one recorded); ${fix}`,
    );
  }
  if (bytes.length < ARROW_FILE_MAGIC.length || !bytes.subarray(0, 6).equals(ARROW_FILE_MAGIC)) {
    throw new StrataError(
      "bad_value",
      `${what} is not an Arrow IPC file (it does not start with "ARROW1"); ${fix}`,
    );
  }
  try {
    return tableFromIPC(bytes);
  } catch (error) {
    throw new StrataError("bad_value", `${what} is a damaged Arrow IPC file; ${fix}`, {
      cause: error,
    });
  }
}

function describeStored(stored: StoredValue): string {
  return stored.partitionKey === null
    ? `asset "${stored.assetKey}"`
    : `partition "${stored.partitionKey}" of asset "${stored.assetKey}"`;
}
