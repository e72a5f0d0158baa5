import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { rowsToTable } from "../../src/values/arrow-encoder.js";
import { readArrowFile, writeArrowFile } from "../../src/values/arrow-file.js";
import { createTempDir } from "../helpers/temp-dir.js";

/** A writable directory on another filesystem than the temp dir (tmpfs), if this machine has one. */
const OTHER_FILESYSTEM = (() => {
  try {
    return statSync("/dev/shm").dev !== statSync(tmpdir()).dev ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
})();

let dir: { path: string; remove(): Promise<void> };
beforeEach(async () => {
  dir = await createTempDir("strata-arrow-file-");
});
afterEach(() => dir.remove());

/** `bytes` with the first `from` replaced by `to` (same length), as a disk fault or an edit would. */
function replaced(bytes: Buffer, from: string, to: string): Buffer {
  const at = bytes.indexOf(from);
  expect(at).toBeGreaterThan(0);
  const changed = Buffer.from(bytes);
  changed.write(to, at, "latin1");
  return changed;
}

describe("writeArrowFile and readArrowFile checksums", () => {
  it.each([
    ["a small value", 2],
    ["a large value written in chunks", 3_000],
  ])("returns the SHA-256 of %s, as sha256sum prints it", async (_what, n) => {
    const path = join(dir.path, "value.arrow");
    const rows = Array.from({ length: n }, (_, i) => ({ i, text: "x".repeat(200) }));
    const { sha256 } = await writeArrowFile(path, rowsToTable(rows, "docs"));
    expect(sha256).toBe(
      createHash("sha256")
        .update(await readFile(path))
        .digest("hex"),
    );
    const stored = { assetKey: "docs", partitionKey: null, sha256 };
    expect(tableToRows(await readArrowFile(path, stored))).toEqual(rows);
  });

  it.each([
    ["a partition", "en", 'partition "en" of asset "raw/docs"', '--partition "en"'],
    ["an unpartitioned asset", null, 'asset "raw/docs"', ""],
  ])(
    "refuses a file of %s whose bytes changed but not its length, naming the asset, partition and file",
    async (_what, partitionKey, names, partitionFlag) => {
      const path = join(dir.path, "value.arrow");
      const { sha256 } = await writeArrowFile(path, rowsToTable([{ text: "hello" }], "raw/docs"));
      const changed = replaced(await readFile(path), "hello", "jello");
      await writeFile(path, changed);
      // an Arrow reader alone would hand the changed value on
      const stored = { assetKey: "raw/docs", partitionKey, sha256 };
      const read = readArrowFile(path, stored);
      await expect(read).rejects.toMatchObject({ code: "value_corrupt" });
      const message = ((await read.catch((e: unknown) => e)) as Error).message;
      expect(message).toBe(
        `the stored value of ${names} ("${path}") was changed after it was written (its SHA-256 no longer matches the one recorded); materialize it again: strata materialize --select "raw/docs"${partitionFlag === "" ? "" : ` ${partitionFlag}`}`,
      );
    },
  );

  it("names the asset, partition and file of a missing file", async () => {
    const path = join(dir.path, "gone.arrow");
    const { sha256 } = await writeArrowFile(path, rowsToTable([{ v: 1 }], "docs"));
    await rm(path);
    const read = readArrowFile(path, { assetKey: "docs", partitionKey: "2026-01-01", sha256 });
    await expect(read).rejects.toMatchObject({
      code: "upstream_missing",
      message: `the stored value of partition "2026-01-01" of asset "docs" ("${path}") does not exist; materialize it again: strata materialize --select "docs" --partition "2026-01-01"`,
    });
  });

  it("reads a file recorded without a checksum (written by an earlier version) unchecked", async () => {
    const path = join(dir.path, "old.arrow");
    await writeArrowFile(path, rowsToTable([{ v: 1 }], "docs"));
    const stored = { assetKey: "docs", partitionKey: null, sha256: null };
    expect(tableToRows(await readArrowFile(path, stored))).toEqual([{ v: 1 }]);
  });
});

describe("writeArrowFile through a staging directory", () => {
  it.each([
    ["small", 2],
    ["large", 3_000],
  ])("writes a %s value through tempDir and leaves nothing there", async (_what, n) => {
    const rows = Array.from({ length: n }, (_, i) => ({ i, text: "x".repeat(200) }));
    const path = join(dir.path, "docs", "__all__", "m1.arrow");
    const staging = join(dir.path, ".tmp");
    await writeArrowFile(path, rowsToTable(rows, "docs"), { tempDir: staging });
    expect(tableToRows(await readArrowFile(path))).toEqual(rows);
    expect(await readdir(staging)).toEqual([]);
    // and again after both directories were removed (a prune, a cleanup)
    await rm(dir.path, { recursive: true, force: true });
    await writeArrowFile(path, rowsToTable(rows, "docs"), { tempDir: staging });
    expect(tableToRows(await readArrowFile(path))).toEqual(rows);
  });

  it.skipIf(!OTHER_FILESYSTEM)(
    "falls back to a temp file next to the value when tempDir is on another filesystem",
    async () => {
      const other = await mkdtemp(join(OTHER_FILESYSTEM!, "strata-staging-"));
      try {
        for (const n of [2, 3_000]) {
          const rows = Array.from({ length: n }, (_, i) => ({ i, text: "x".repeat(200) }));
          const path = join(dir.path, "docs", "__all__", `m${n}.arrow`);
          await writeArrowFile(path, rowsToTable(rows, "docs"), { tempDir: other });
          expect(tableToRows(await readArrowFile(path))).toEqual(rows);
          expect(await readdir(other)).toEqual([]);
          expect(await readdir(dirname(path))).not.toContainEqual(expect.stringMatching(/\.tmp$/));
        }
      } finally {
        await rm(other, { recursive: true, force: true });
      }
    },
  );
});
