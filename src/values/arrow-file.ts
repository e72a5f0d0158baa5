import { randomUUID } from "node:crypto";
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { RecordBatchFileWriter, type Table, tableFromIPC } from "apache-arrow";
import { StrataError } from "../errors.js";

/** The first bytes of every Arrow IPC file (the stream format has no magic). */
const ARROW_FILE_MAGIC = Buffer.from("ARROW1", "latin1");

/**
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
