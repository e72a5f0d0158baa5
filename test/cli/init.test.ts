import { mkdir, readdir, readFile, realpath, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import { REPO_ROOT } from "../helpers/project-fixture.js";
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
    const init = await runCliProcess(["init", "pipeline"], { cwd: dir });
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    expect(init.stdout).toContain("npx strata sim");
    expect(init.stdout).toContain("npx strata materialize --select '*'");

    const project = join(dir, "pipeline");
    expect((await readdir(project)).sort()).toEqual([
      ".gitignore",
      "README.strata.md",
      "package.json",
      "strata.config.ts",
    ]);
    expect(await readFile(join(project, ".gitignore"), "utf8")).toMatch(/^\.strata\/$/m);
    expect(JSON.parse(await readFile(join(project, "package.json"), "utf8"))).toMatchObject({
      type: "module",
      dependencies: { strata: `^${VERSION}` },
    });
    const config = await readFile(join(project, "strata.config.ts"), "utf8");
    expect(config).toContain('process.env.STRATA_ENDPOINT_URL ?? "http://127.0.0.1:8000/v1"');

    // The scaffolded dependency is not installed: link it, as npm install would.
    await mkdir(join(project, "node_modules"));
    await symlink(REPO_ROOT, join(project, "node_modules", "strata"), "dir");

    const sim: Simulator = await startSimulator({ port: 0 });
    try {
      const run = await runCliProcess(["materialize", "--select", "*", "--json"], {
        cwd: project,
        env: { STRATA_ENDPOINT_URL: sim.url },
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
  }, 90_000);

  it("refuses to overwrite a file, names it and writes nothing", async () => {
    const existing = "export default 1;\n";
    await writeFile(join(dir, "strata.config.ts"), existing);

    const init = await runCliProcess(["init"], { cwd: dir });

    expect(init.code).toBe(2);
    expect(init.stderr).toContain(join(dir, "strata.config.ts"));
    expect(init.stderr).toContain("already exists");
    expect(init.stderr).not.toMatch(/\n\s+at /); // a one-line message, no stack trace
    expect(await readdir(dir)).toEqual(["strata.config.ts"]);
    expect(await readFile(join(dir, "strata.config.ts"), "utf8")).toBe(existing);
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
