import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { StoreError } from "../errors.js";
import { isProcessAlive } from "../util/process-liveness.js";

/**
 * An exclusive lock on an embedded database directory, held by one process.
 *
 * PGlite runs one Postgres per data directory, and two processes on one directory corrupt it.
 * The lock is a file created with O_EXCL holding the owner's pid; a lock whose pid is no longer
 * alive (the owner was killed) is broken by the next process.
 *
 * @example
 * const lock = acquireEmbeddedLock("/srv/app/.strata/db");
 * try { ... } finally { lock.release(); }
 */
export interface EmbeddedLock {
  readonly path: string;
  release(): void;
}

/** Takes the lock of the embedded database at `dataDir`, or throws `db_locked`. */
export function acquireEmbeddedLock(dataDir: string): EmbeddedLock {
  const path = `${dataDir}.lock`;
  const token = `${process.pid}:${randomBytes(8).toString("hex")}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(path, token)) return holdLock(path, token);
    const holder = readLock(path);
    if (holder === undefined) continue; // removed between our create and read: try again
    if (isAlive(holder.pid)) throw lockedError(dataDir, holder.pid);
    breakStaleLock(path, holder.content, dataDir);
  }
  throw new StoreError(
    "db_locked",
    `could not take the lock of the embedded database at ${dataDir}`,
  );
}

function holdLock(path: string, token: string): EmbeddedLock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    if (readLock(path)?.content === token) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", release);
  return { path, release };
}

function tryCreate(path: string, token: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new StoreError(
      "db_unreachable",
      `cannot create the lock file ${path}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  try {
    writeSync(fd, token);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readLock(path: string): { pid: number; content: string } | undefined {
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(content.split(":")[0] ?? "", 10);
  // A lock file caught between create and write is empty: treat its holder as alive for now.
  return { pid: Number.isFinite(pid) ? pid : -1, content };
}

function isAlive(pid: number): boolean {
  if (pid === -1) return true;
  if (pid === process.pid) return true;
  return isProcessAlive(pid);
}

/**
 * Moves a dead owner's lock aside. Renaming is atomic, so of two processes breaking the same
 * stale lock only one moves it; if what we moved turns out to be a fresh lock that another
 * process took in between, it is put back and we report that process as the holder.
 */
function breakStaleLock(path: string, staleContent: string, dataDir: string): void {
  const aside = `${path}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else moved it first
  }
  let moved = "";
  try {
    moved = readFileSync(aside, "utf8");
  } catch {
    // unreadable: treat as stale
  }
  if (moved === staleContent) {
    unlinkSync(aside);
    return;
  }
  try {
    renameSync(aside, path);
  } catch {
    // nothing sensible left to do; the next attempt decides
  }
  const pid = Number.parseInt(moved.split(":")[0] ?? "", 10);
  throw lockedError(dataDir, pid);
}

function lockedError(dataDir: string, pid: number): StoreError {
  return new StoreError(
    "db_locked",
    `embedded database at ${dataDir} is in use by pid ${pid}; set DATABASE_URL to share a Postgres server`,
  );
}
