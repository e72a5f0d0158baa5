import { execFile } from "node:child_process";
import { readdir, readFile, realpath, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import { createProjectFixture, REPO_ROOT } from "../helpers/project-fixture.js";
import { runCliInProcess } from "../helpers/run-cli.js";
import { createTempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);

const PACKAGE = JSON.parse(await readFile(join(REPO_ROOT, "package.json"), "utf8")) as {
  version: string;
};

/** The `strata` dependency `strata init` writes for a project in `dir`: this checkout, by path. */
function dependencyOn(dir: string): string {
  return `file:${relative(dir, REPO_ROOT).split("\\").join("/")}`;
}

/** `npm` or `npx`, run where a user would run it, never reaching the network. */
function npm(command: "npm" | "npx", args: ReadonlyArray<string>, cwd: string) {
  return run(command, ["--offline", ...args], {
    cwd,
    timeout: 60_000,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
}

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
        dependencies: { strata: dependencyOn(project.dir) },
      });
      const config = await readFile(project.file, "utf8");
      expect(config).toContain('process.env.STRATA_ENDPOINT_URL || "http://127.0.0.1:8000/v1"');

      const sim: Simulator = await startSimulator({ port: 0 });
      try {
        // in a process of its own: the project reads its endpoint from the process's environment
        const run = await project.cliProcess(["materialize", "--select", "*", "--json"], {
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

  it("points the new project at this strata: npm installs it offline and npx strata runs it", async () => {
    const init = await runCliInProcess(["init", "pipeline"], { cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    const project = join(dir, "pipeline");
    const pkg = JSON.parse(await readFile(join(project, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    // a path to this checkout, not a registry version (the registry's "strata" is another package)
    expect(pkg.dependencies.strata).toBe(dependencyOn(project));
    expect(resolve(project, pkg.dependencies.strata!.slice("file:".length))).toBe(
      resolve(REPO_ROOT),
    );

    await npm("npm", ["install", "--no-audit", "--no-fund"], project);
    expect(await realpath(join(project, "node_modules", "strata"))).toBe(await realpath(REPO_ROOT));
    const version = await npm("npx", ["strata", "--version"], project);
    expect(version.stdout.trim()).toBe(PACKAGE.version);
    const help = await npm("npx", ["strata", "--help"], project);
    expect(help.stdout).toContain("asset-centric data pipelines");
    expect(help.stdout).toContain("materialize");
  }, 90_000);

  it("says how to add strata to a package.json it keeps", async () => {
    await writeFile(join(dir, "package.json"), '{ "name": "mine" }\n');
    const init = await runCliInProcess(["init", "."], { cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`npm install ${dependencyOn(dir)}`);
  });

  it.each(["strata.config.ts", "README.strata.md"])(
    "refuses to overwrite %s, names it and writes nothing",
    async (name) => {
      const existing = "mine\n";
      await writeFile(join(dir, name), existing);

      const init = await runCliInProcess(["init", "."], { cwd: dir });

      expect(init.code).toBe(2);
      expect(init.stderr).toContain(`"${join(dir, name)}" already exists`);
      expect(init.stderr.trim().split("\n")).toHaveLength(1); // one line, no stack trace
      // every target is checked before any is written: not even .gitignore appeared
      expect(await readdir(dir)).toEqual([name]);
      expect(await readFile(join(dir, name), "utf8")).toBe(existing);
    },
  );

  it("creates the directory it is given", async () => {
    const init = await runCliInProcess(["init", "nested/pipeline"], { cwd: dir });

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

    const init = await runCliInProcess(["init", "."], { cwd: dir });

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
