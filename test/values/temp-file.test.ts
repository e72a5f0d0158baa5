import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { rowsToTable } from "../../src/values/arrow-encoder.js";
import { writeArrowFile } from "../../src/values/arrow-file.js";
import { removeStaleTempFiles } from "../../src/values/temp-file.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { startTempFileWriter, type TempFileWriter } from "../helpers/temp-file-writer.js";

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

describe("removeStaleTempFiles", () => {
  let dir: { path: string; remove(): Promise<void> };
  const writers: TempFileWriter[] = [];
  beforeEach(async () => {
    dir = await createTempDir("strata-temp-files-");
  });
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.kill();
    await dir.remove();
  });

  async function writer(path: string): Promise<TempFileWriter> {
    const w = await startTempFileWriter(path);
    writers.push(w);
    return w;
  }

  it("removes what a killed writer left and keeps what a live writer is writing", async () => {
    const partition = join(dir.path, "docs", "__all__");
    const killed = await writer(join(partition, "m1.arrow"));
    const live = await writer(join(partition, "m2.arrow"));
    await killed.kill();
    await writeArrowFile(join(partition, "m0.arrow"), rowsToTable([{ v: 1 }], "docs"));
    await writeFile(join(partition, "notes.tmp"), "not ours");

    const removed = await removeStaleTempFiles(partition);
    expect(removed).toEqual([killed.tempPath]);
    expect(existsSync(killed.tempPath)).toBe(false);
    expect(existsSync(live.tempPath)).toBe(true);
    expect((await readdir(partition)).sort()).toEqual(
      ["m0.arrow", "notes.tmp", live.tempPath.slice(partition.length + 1)].sort(),
    );
  });

  it("removes a killed writer's file named the way earlier versions named it (no host tag)", async () => {
    const legacy = join(dir.path, `m1.arrow.${await deadPid()}.${randomUUID()}.tmp`);
    const ours = join(dir.path, `m2.arrow.${process.pid}.${randomUUID()}.tmp`);
    await writeFile(legacy, "x");
    await writeFile(ours, "x");
    expect(await removeStaleTempFiles(dir.path)).toEqual([legacy]);
    expect(existsSync(ours)).toBe(true);
  });

  it("keeps another host's temp files unless asked to remove those older than a time", async () => {
    const foreign = join(dir.path, `m1.arrow.${await deadPid()}.00000000.${randomUUID()}.tmp`);
    await writeFile(foreign, "x");
    expect(await removeStaleTempFiles(dir.path)).toEqual([]);
    const hourAgo = new Date(Date.now() - 3_600_000);
    expect(await removeStaleTempFiles(dir.path, { otherHostsBefore: hourAgo })).toEqual([]);
    const dayAgo = new Date(Date.now() - 86_400_000);
    await utimes(foreign, dayAgo, dayAgo);
    expect(await removeStaleTempFiles(dir.path, { otherHostsBefore: hourAgo })).toEqual([foreign]);
    expect(existsSync(foreign)).toBe(false);
  });

  it("looks below the directory when recursive, and removes nothing on a dry run", async () => {
    const killed = await writer(join(dir.path, "a", "b", "__all__", "m1.arrow"));
    await killed.kill();
    expect(await removeStaleTempFiles(dir.path)).toEqual([]);
    expect(await removeStaleTempFiles(dir.path, { recursive: true, dryRun: true })).toEqual([
      killed.tempPath,
    ]);
    expect(existsSync(killed.tempPath)).toBe(true);
    expect(await removeStaleTempFiles(dir.path, { recursive: true })).toEqual([killed.tempPath]);
    expect(await removeStaleTempFiles(join(dir.path, "absent"), { recursive: true })).toEqual([]);
  });
});
