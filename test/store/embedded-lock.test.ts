import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../src/errors.js";
import { acquireEmbeddedLock } from "../../src/store/embedded-lock.js";
import { processStartToken } from "../../src/util/process-liveness.js";
import { createTempDir } from "../helpers/temp-dir.js";

/** A child process that stays alive until killed. */
function startSleeper(): ChildProcess {
  return spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" });
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  const pid = child.pid;
  if (pid === undefined) throw new Error("the child did not start");
  return pid;
}

describe("acquireEmbeddedLock", () => {
  let temp: { path: string; remove(): Promise<void> };
  let dataDir: string;
  let lockPath: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    temp = await createTempDir("strata-lock-");
    dataDir = join(temp.path, "db");
    lockPath = `${dataDir}.lock`;
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await new Promise((resolve) => child.once("exit", resolve));
      }
    }
    await temp.remove();
  });

  it("creates a lock file holding this process's pid and removes it on release", () => {
    const lock = acquireEmbeddedLock(dataDir);
    expect(lock.path).toBe(lockPath);
    expect(readFileSync(lockPath, "utf8")).toBe(
      `${process.pid}:${readFileSync(lockPath, "utf8").split(":")[1]}:${processStartToken(process.pid) ?? ""}`,
    );
    expect(readFileSync(lockPath, "utf8")).toMatch(new RegExp(`^${process.pid}:[0-9a-f]{16}:`));
    lock.release();
    expect(existsSync(lockPath)).toBe(false);
    lock.release(); // a second release is harmless
    expect(existsSync(lockPath)).toBe(false);
  });

  it("breaks a stale lock whose pid is no longer alive", async () => {
    const pid = await deadPid();
    writeFileSync(lockPath, `${pid}:0123456789abcdef`);
    const lock = acquireEmbeddedLock(dataDir);
    try {
      expect(readFileSync(lockPath, "utf8")).toMatch(new RegExp(`^${process.pid}:`));
    } finally {
      lock.release();
    }
    expect(existsSync(lockPath)).toBe(false);
  });

  it("refuses with db_locked naming the pid of a live holder and leaves its lock alone", async () => {
    const holder = startSleeper();
    children.push(holder);
    await new Promise((resolve) => holder.once("spawn", resolve));
    const content = `${holder.pid}:fedcba9876543210`;
    writeFileSync(lockPath, content);

    const error = (() => {
      try {
        acquireEmbeddedLock(dataDir);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: "db_locked", isUsageError: true });
    expect((error as Error).message).toBe(
      `embedded database at ${dataDir} is in use by pid ${holder.pid}; set DATABASE_URL to share a Postgres server`,
    );
    expect(readFileSync(lockPath, "utf8")).toBe(content);
  });

  it.each([
    [
      "written by a process before a restart",
      "0123456789abcdef:00000000-0000-4000-8000-000000000000/1",
    ],
    ["written by an older strata, without a start token", "0123456789abcdef"],
  ])(
    "breaks a lock that records this process's pid but is not this process's: %s",
    (_name, rest) => {
      writeFileSync(lockPath, `${process.pid}:${rest}`);
      const lock = acquireEmbeddedLock(dataDir);
      try {
        expect(readFileSync(lockPath, "utf8")).not.toContain(rest);
        expect(readFileSync(lockPath, "utf8")).toMatch(new RegExp(`^${process.pid}:`));
      } finally {
        lock.release();
      }
    },
  );

  it.skipIf(processStartToken(process.pid) === undefined)(
    "breaks a lock whose pid now belongs to a process started after it was taken",
    async () => {
      const holder = startSleeper();
      children.push(holder);
      await new Promise((resolve) => holder.once("spawn", resolve));
      const token = processStartToken(holder.pid!)!;
      const earlier = `${token.split("/")[0]}/1`;
      writeFileSync(lockPath, `${holder.pid}:0123456789abcdef:${earlier}`);
      const lock = acquireEmbeddedLock(dataDir);
      try {
        expect(readFileSync(lockPath, "utf8")).toMatch(new RegExp(`^${process.pid}:`));
      } finally {
        lock.release();
      }

      // the same pid with its own start token is the holder: refused, its lock left alone
      const theirs = `${holder.pid}:0123456789abcdef:${token}`;
      writeFileSync(lockPath, theirs);
      expect(() => acquireEmbeddedLock(dataDir)).toThrow(
        expect.objectContaining({ code: "db_locked" }),
      );
      expect(readFileSync(lockPath, "utf8")).toBe(theirs);
    },
  );

  it("refuses a second lock on the same database within one process", () => {
    const lock = acquireEmbeddedLock(dataDir);
    try {
      expect(() => acquireEmbeddedLock(dataDir)).toThrow(
        expect.objectContaining({ code: "db_locked" }),
      );
      expect(existsSync(lockPath)).toBe(true);
    } finally {
      lock.release();
    }
  });

  it("on release leaves a lock file alone that is no longer its own", () => {
    const lock = acquireEmbeddedLock(dataDir);
    // another process broke our lock (believing us dead) and took the database
    const theirs = "4194303:00000000deadbeef";
    writeFileSync(lockPath, theirs);
    lock.release();
    expect(readFileSync(lockPath, "utf8")).toBe(theirs);
  });

  it("can be taken again after it was released", () => {
    acquireEmbeddedLock(dataDir).release();
    const lock = acquireEmbeddedLock(dataDir);
    expect(existsSync(lockPath)).toBe(true);
    lock.release();
  });
});
