import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packDirectory, unpackDirectory } from "../../src/store/data-dir-archive.js";
import { createTempDir } from "../helpers/temp-dir.js";

describe("packDirectory and unpackDirectory", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  /** A folder with nested folders, an empty file, binary data, modes and a 150-character path. */
  async function sampleTree(): Promise<string> {
    const temp = await createTempDir();
    cleanups.push(temp.remove);
    const dir = join(temp.path, "src");
    const deep = join(dir, "base", "a".repeat(60), "b".repeat(60));
    mkdirSync(deep, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, "PG_VERSION"), "17\n", { mode: 0o600 });
    writeFileSync(join(dir, "empty"), "");
    writeFileSync(join(deep, "1259"), Buffer.from([0, 1, 2, 255, 0, 0, 7]), { mode: 0o640 });
    writeFileSync(join(dir, "base", "big"), Buffer.alloc(100_000, 3));
    return dir;
  }

  it("restores every folder and file with its content and mode", async () => {
    const dir = await sampleTree();
    const out = join(dir, "..", "out");
    unpackDirectory(packDirectory(dir), out);
    const deep = join("base", "a".repeat(60), "b".repeat(60));
    for (const file of ["PG_VERSION", "empty", join(deep, "1259"), join("base", "big")]) {
      expect(readFileSync(join(out, file)), file).toEqual(readFileSync(join(dir, file)));
      expect(statSync(join(out, file)).mode, file).toBe(statSync(join(dir, file)).mode);
    }
    expect(statSync(join(out, deep)).isDirectory()).toBe(true);
  });

  it("writes a gzipped tar that tar lists", async () => {
    const dir = await sampleTree();
    const archive = join(dir, "..", "data.tar.gz");
    writeFileSync(archive, packDirectory(dir));
    const listing = execFileSync("tar", ["-tzf", archive], { encoding: "utf8" }).split("\n");
    expect(listing).toEqual(expect.arrayContaining(["PG_VERSION", "base/big", "empty"]));
    expect(listing.some((l) => l.endsWith(`${"b".repeat(60)}/1259`))).toBe(true);
  });
});
