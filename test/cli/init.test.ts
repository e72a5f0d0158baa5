import { readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import { createProjectFixture, REPO_ROOT } from "../helpers/project-fixture.js";
import { runCliProcess } from "../helpers/run-cli.js";
import { createTempDir } from "../helpers/temp-dir.js";

const VERSION = (
  JSON.parse(await readFile(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }
).version;

describe("strata init", () => {
  let temp: Awaited<ReturnType<typeof createTempDir>>;
  let dir: string;

  beforeEach(async () => {
    temp = await createTempDir("strata-init-");
    dir = await realpath(temp.path);
  });
  afterEach(() => temp.remove());

  it("scaffolds a project that materializes against strata sim", async () => {
    // A directory holding only what `npm install` would add (node_modules/strata, linked to this
    // repository) and a migrated embedded database copied from the test template (creating one
    // costs seconds of CPU and is not what this test is about).
    const project = await createProjectFixture({}, { migratedDatabase: true });
    try {
      const init = await project.cli(["init"]);
      expect(init.stderr).toBe("");
      expect(init.code).toBe(0);
      expect(init.stdout).toContain("npx strata sim");
      expect(init.stdout).toContain("npx strata materialize --select '*'");

      expect((await readdir(project.dir)).sort()).toEqual([
        ".gitignore",
        ".strata",
        "README.strata.md",
        "node_modules",
        "package.json",
        "strata.config.ts",
      ]);
      expect(await readFile(join(project.dir, ".gitignore"), "utf8")).toMatch(/^\.strata\/$/m);
      expect(JSON.parse(await readFile(join(project.dir, "package.json"), "utf8"))).toMatchObject({
        type: "module",
        dependencies: { strata: `^${VERSION}` },
      });
      const config = await readFile(project.file, "utf8");
      expect(config).toContain('process.env.STRATA_ENDPOINT_URL || "http://127.0.0.1:8000/v1"');

      const sim: Simulator = await startSimulator({ port: 0 });
      try {
        const run = await project.cli(["materialize", "--select", "*", "--json"], {
          STRATA_ENDPOINT_URL: sim.url,
        });
        expect(run.code, run.stderr).toBe(0);
        const result = JSON.parse(run.stdout) as {
          status: string;
          costUsd: string;
          assets: { key: string; status: string; rows: number; completionTokens: number }[];
        };
        expect(result.status).toBe("succeeded");
        const byKey = new Map(result.assets.map((a) => [a.key, a]));
        expect([...byKey.keys()].sort()).toEqual(["analyses", "raw/documents"]);
        expect(byKey.get("raw/documents")).toMatchObject({ status: "succeeded", rows: 3 });
        expect(byKey.get("analyses")).toMatchObject({ status: "succeeded", rows: 3 });
        expect(byKey.get("analyses")!.completionTokens).toBeGreaterThan(0);
        expect(Number(result.costUsd)).toBeGreaterThan(0);
        // Every document reached the endpoint: the simulator billed one call each.
        expect(sim.ledger().totals.calls).toBe(3);
      } finally {
        await sim.close();
      }
    } finally {
      await project.remove();
    }
  }, 90_000);

  it.each(["strata.config.ts", "README.strata.md"])(
    "refuses to overwrite %s, names it and writes nothing",
    async (name) => {
      const existing = "mine\n";
      await writeFile(join(dir, name), existing);

      const init = await runCliProcess(["init", "."], { cwd: dir });

      expect(init.code).toBe(2);
      expect(init.stderr).toContain(`"${join(dir, name)}" already exists`);
      expect(init.stderr.trim().split("\n")).toHaveLength(1); // one line, no stack trace
      // every target is checked before any is written: not even .gitignore appeared
      expect(await readdir(dir)).toEqual([name]);
      expect(await readFile(join(dir, name), "utf8")).toBe(existing);
    },
  );

  it("creates the directory it is given", async () => {
    const init = await runCliProcess(["init", "nested/pipeline"], { cwd: dir });

    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain("cd nested/pipeline");
    expect((await readdir(join(dir, "nested", "pipeline"))).sort()).toEqual([
      ".gitignore",
      "README.strata.md",
      "package.json",
      "strata.config.ts",
    ]);
  });

  it("keeps an existing package.json and adds .strata/ to an existing .gitignore", async () => {
    const pkg = '{ "name": "mine" }\n';
    await writeFile(join(dir, "package.json"), pkg);
    await writeFile(join(dir, ".gitignore"), "dist");

    const init = await runCliProcess(["init", "."], { cwd: dir });

    expect(init.code).toBe(0);
    expect(await readFile(join(dir, "package.json"), "utf8")).toBe(pkg);
    expect(await readFile(join(dir, ".gitignore"), "utf8")).toBe("dist\n.strata/\n");
    expect((await readdir(dir)).sort()).toEqual([
      ".gitignore",
      "README.strata.md",
      "package.json",
      "strata.config.ts",
    ]);
  });
});
