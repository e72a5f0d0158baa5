import { randomBytes } from "node:crypto";
import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { StoreError } from "../errors.js";
import { isProcessAlive, processStartToken } from "../util/process-liveness.js";

/**
 * An exclusive lock on an embedded database directory, held by one process.
 *
 * PGlite runs one Postgres per data directory, and two processes on one directory corrupt it.
 * The lock is a file created with O_EXCL holding the owner's pid, a random token and the
 * owner's start token (boot id and start time, where `/proc` has them); a lock whose owner is
 * no longer alive is broken by the next process. A pid alone is not enough: after a container
 * restart the recorded pid may be ours, or another live process's.
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
  const token = `${process.pid}:${randomBytes(8).toString("hex")}:${processStartToken(process.pid) ?? ""}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(path, token)) return holdLock(path, token);
    const holder = readLock(path);
    if (holder === undefined) continue; // removed between our create and read: try again
    if (isAlive(holder)) throw lockedError(dataDir, holder.pid);
    breakStaleLock(path, holder.content, dataDir);
  }
  throw new StoreError(
    "db_locked",
    `could not take the lock of the embedded database at ${dataDir}`,
  );
}

// The lock tokens this process holds, shared by every copy of this module in the process.
const HELD_KEY = Symbol.for("strata.embeddedLocks");
const registry = globalThis as { [HELD_KEY]?: Set<string> };
registry[HELD_KEY] ??= new Set<string>();
const HELD: Set<string> = registry[HELD_KEY];

function holdLock(path: string, token: string): EmbeddedLock {
  let released = false;
  HELD.add(token);
  const release = () => {
    if (released) return;
    released = true;
    HELD.delete(token);
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

interface LockHolder {
  readonly pid: number;
  /** The holder's start token; undefined in locks of older versions or where /proc is absent. */
  readonly start: string | undefined;
  readonly content: string;
}

function readLock(path: string): LockHolder | undefined {
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const [pidText = "", , start] = content.split(":");
  const pid = Number.parseInt(pidText, 10);
  // A lock file caught between create and write is empty: treat its holder as alive for now.
  return { pid: Number.isFinite(pid) ? pid : -1, start: start || undefined, content };
}

function isAlive(holder: LockHolder): boolean {
  if (holder.pid === -1) return true;
  if (HELD.has(holder.content)) return true; // this very process holds it
  // our pid, but not our lock: a process before a restart had our pid
  if (holder.pid === process.pid) return false;
  if (!isProcessAlive(holder.pid)) return false;
  // alive, but is it the process that took the lock, or a later one given the same pid?
  const now = processStartToken(holder.pid);
  return holder.start === undefined || now === undefined || now === holder.start;
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
