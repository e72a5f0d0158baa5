import { existsSync, readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  diamondProject,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import { startTempFileWriter } from "../helpers/temp-file-writer.js";

describe("strata runs prune", CLI_TEST_OPTIONS, () => {
  let project: ProjectFixture;
  beforeAll(async () => {
    project = await createProjectFixture(diamondProject(), { migratedDatabase: true });
    const run = await project.cli(["materialize", "--select", "*", "--json"]);
    expect(run.code, run.stderr).toBe(0);
  });
  afterAll(() => project.remove());

  it("keeps a recent run and says what it kept", async () => {
    const dry = await project.cli(["runs", "prune", "--older-than", "30d", "--dry-run", "--json"]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, runs: 0, materializations: 0 });
    const real = await project.cli(["runs", "prune", "--older-than", "1d"]);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain("the latest materialization of every asset partition is kept");
    const runs = await project.cli(["runs", "--json"]);
    expect(JSON.parse(runs.stdout)).toHaveLength(1);
  });

  it("removes the temp files of writes killed on this host and keeps a live writer's", async () => {
    const storage = join(project.dir, ".strata", "storage");
    const value = (key: string) => join(storage, key, "__all__", `m-${key}.arrow`);
    // one through the staging directory, one next to its value as earlier versions wrote them
    const killed = await startTempFileWriter(value("killed"), join(storage, ".tmp"));
    const killedBeside = await startTempFileWriter(value("beside"));
    const live = await startTempFileWriter(value("live"), join(storage, ".tmp"));
    try {
      await killed.kill();
      await killedBeside.kill();
      const dry = await project.cli([
        "runs",
        "prune",
        "--older-than",
        "30d",
        "--dry-run",
        "--json",
      ]);
      expect(dry.code, dry.stderr).toBe(0);
      expect(JSON.parse(dry.stdout)).toMatchObject({ tempFiles: 2 });
      expect(existsSync(killed.tempPath)).toBe(true);

      const real = await project.cli(["runs", "prune", "--older-than", "30d"]);
      expect(real.code, real.stderr).toBe(0);
      expect(real.stdout).toContain("2 temp file(s) of killed writes");
      expect(existsSync(killed.tempPath)).toBe(false);
      expect(existsSync(killedBeside.tempPath)).toBe(false);
      expect(existsSync(live.tempPath)).toBe(true);
    } finally {
      await live.kill();
    }
  });

  it("says in its help what it keeps", async () => {
    const help = await project.cli(["runs", "prune", "--help"]);
    expect(help.stdout).toContain("every materialization a kept one read");
  });

  it.each(["30", "30x", "-1d", "'; drop schema strata cascade; --"])(
    "refuses --older-than %j with exit code 2",
    async (age) => {
      const result = await project.cli(["runs", "prune", "--older-than", age]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^strata: --older-than must be an age such as 30d/);
    },
  );
});

describe("strata with STRATA_STORAGE", CLI_TEST_OPTIONS, () => {
  it("stores values under it, reads them back from there and prunes them there", async () => {
    const project = await createProjectFixture(diamondProject(), { migratedDatabase: true });
    const shared = join(project.dir, "..", `${basename(project.dir)}-shared`);
    const env = { STRATA_STORAGE: shared };
    try {
      const first = await project.cli(["materialize", "--select", "*", "--json"], env);
      expect(first.code, first.stderr).toBe(0);
      // report alone: its inputs are read from the shared storage
      const second = await project.cli(["materialize", "--select", "report", "--json"], env);
      expect(second.code, second.stderr).toBe(0);
      const files = () => filesUnder(shared).filter((f) => f.endsWith(".arrow"));
      expect(files()).toHaveLength(5);
      expect(existsSync(join(project.dir, ".strata", "storage"))).toBe(false);

      const pruned = await project.cli(["runs", "prune", "--older-than", "0d", "--json"], env);
      expect(pruned.code, pruned.stderr).toBe(0);
      // the first report, superseded and read by nothing, goes with its file
      expect(JSON.parse(pruned.stdout)).toMatchObject({ materializations: 1, files: 1 });
      expect(files()).toHaveLength(4);
    } finally {
      await project.remove();
      rmSync(shared, { recursive: true, force: true });
    }
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}
