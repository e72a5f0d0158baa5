import { createHash, randomUUID } from "node:crypto";
import type { Dirent } from "node:fs";
import { readdir, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { isProcessAlive } from "../util/process-liveness.js";

/** A short, path-safe tag of this machine's hostname, so a pid is only judged on its own host. */
const HOST_TAG = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);

/**
 * `<file>.arrow.<pid>[.<host tag>].<uuid>.tmp`: the temporary file a writer fills before renaming
 * it onto `<file>.arrow` (files of earlier versions have no host tag). The lazy prefix keeps an
 * all-digit host tag from being read as the pid.
 */
const TEMP_FILE =
  /^(.+?\.arrow)\.(\d+)\.(?:([0-9a-f]{8})\.)?[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\.tmp$/;

/**
 * The temporary file to write `path` through, in `dir` (default: next to `path`; it must be on
 * the same filesystem for the rename to be atomic), named after the writing process and host so
 * that {@link removeStaleTempFiles} can tell one a killed writer left from one being written.
 *
 * @example
 * tempPathFor("/s/docs/__all__/m1.arrow", "/s/.tmp"); // "/s/.tmp/m1.arrow.4242.1a2b3c4d.<uuid>.tmp"
 */
export function tempPathFor(path: string, dir: string = dirname(path)): string {
  return join(dir, `${basename(path)}.${process.pid}.${HOST_TAG}.${randomUUID()}.tmp`);
}

/**
 * The directory a run writes its values through, `<storageRoot>/.tmp` (no asset key starts with
 * a dot): a write killed mid-way leaves its temporary file there, so the next run finds every
 * leftover with one directory read.
 *
 * @example
 * stagingDir(".strata/storage"); // ".strata/storage/.tmp"
 */
export function stagingDir(storageRoot: string): string {
  return join(storageRoot, ".tmp");
}

/** Options of {@link removeStaleTempFiles}. */
export interface RemoveStaleTempFilesOptions {
  /** Also look in every directory below `dir` (symbolic links are not followed). */
  readonly recursive?: boolean;
  /**
   * Temporary files written on another host cannot be checked for a live writer: remove those
   * last modified before this time; without it, they are kept.
   */
  readonly otherHostsBefore?: Date;
  /** Count what would be removed, and remove nothing. */
  readonly dryRun?: boolean;
}

/**
 * Removes the temporary files that writers killed mid-write (SIGKILL, a lost machine) left in
 * `dir`: those written on this host by a process that no longer exists. A file whose writer is
 * alive, or whose name is not one of {@link tempPathFor}'s, is never touched. A directory that
 * does not exist has none. Returns the paths removed.
 *
 * @example
 * await removeStaleTempFiles(".strata/storage", { recursive: true });
 */
export async function removeStaleTempFiles(
  dir: string,
  options: RemoveStaleTempFilesOptions = {},
): Promise<string[]> {
  const removed: string[] = [];
  const pending = [dir];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    let entries: Dirent[];
    try {
      entries = await readdir(next, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") continue;
      throw error;
    }
    for (const entry of entries) {
      const path = join(next, entry.name);
      if (entry.isDirectory()) {
        if (options.recursive) pending.push(path);
        continue;
      }
      if (!entry.isFile() || !(await isStale(path, entry.name, options))) continue;
      if (!options.dryRun) await rm(path, { force: true });
      removed.push(path);
    }
  }
  return removed;
}

async function isStale(
  path: string,
  name: string,
  options: RemoveStaleTempFilesOptions,
): Promise<boolean> {
  const match = TEMP_FILE.exec(name);
  if (match === null) return false;
  const pid = Number(match[2]);
  const host = match[3];
  if (host === undefined || host === HOST_TAG) {
    return pid !== process.pid && !isProcessAlive(pid);
  }
  if (options.otherHostsBefore === undefined) return false;
  try {
    return (await stat(path)).mtimeMs < options.otherHostsBefore.getTime();
  } catch {
    return false;
  }
}
