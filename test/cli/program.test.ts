import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { commandsToLoad } from "../../src/cli/program.js";
import { createProjectFixture, diamondProject } from "../helpers/project-fixture.js";
import { CLI_PATH } from "../helpers/run-cli.js";

// Each command's module loads only when that command runs; commander must still parse every
// command line exactly as it would with all of them registered. (The CLI tests check the output of
// the help, unknown commands and options through the built binary.)

const ALL = ["list", "lineage", "materialize", "runs", "costs", "sim", "db", "init"];

describe("commandsToLoad", () => {
  it.each([
    [["list"], ["list"]],
    [["runs", "show", "abc"], ["runs"]],
    [["--project", "list", "runs"], ["runs"]],
    [["--project=list", "costs", "--by", "model"], ["costs"]],
    [["--database-url", "postgres://x/lineage", "--verbose", "lineage"], ["lineage"]],
    [["db", "--help"], ["db"]],
    [["list", "--version"], ["list"]],
  ])("loads the command %j names, past the program's options and their values", (argv, wanted) => {
    expect(commandsToLoad(argv)).toEqual(wanted);
  });

  it.each([
    [[]],
    [["--help"]],
    [["-h", "list"]],
    [["help", "list"]],
    [["lst"]],
    [["--verbose"]],
    [["--project"]],
    [["--bogus", "list"]],
    [["--", "list"]],
  ])("loads every command for %j: the help, suggestions and errors name them all", (argv) => {
    expect(commandsToLoad(argv)).toEqual(ALL);
  });

  it.each([
    [["--version"]],
    [["-V"]],
    [["--verbose", "--version", "list"]],
    [["--version", "--help"]],
  ])("loads none for %j: commander prints the version before it looks at a command", (argv) => {
    expect(commandsToLoad(argv)).toEqual([]);
  });
});

/**
 * The module URLs that `strata ARGS` (run in `cwd`) resolves, recorded by a module resolve hook
 * registered before the binary starts.
 */
async function urlsLoadedBy(args: ReadonlyArray<string>, cwd?: string): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), "strata-loaded-"));
  try {
    const log = join(dir, "resolved.txt");
    await writeFile(
      join(dir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, resolved.url + "\\n");
  return resolved;
}`,
    );
    await writeFile(
      join(dir, "register.mjs"),
      `import { register } from "node:module";
register(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});`,
    );
    const run = spawnSync(
      process.execPath,
      ["--import", pathToFileURL(join(dir, "register.mjs")).href, CLI_PATH, ...args],
      { encoding: "utf8", cwd: cwd ?? dir },
    );
    expect(run.status, run.stderr).toBe(0);
    return [...new Set((await readFile(log, "utf8")).split("\n").filter((url) => url !== ""))];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The packages whose modules `strata ARGS` loads: installed (`node_modules/<name>/`) or bundled by
 * the build (`dist/vendor/<name>.js`).
 */
async function packagesLoadedBy(args: ReadonlyArray<string>): Promise<ReadonlySet<string>> {
  return new Set(
    (await urlsLoadedBy(args)).flatMap((url) => {
      const match =
        /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url) ??
        /\/dist\/vendor\/([^/]+)\.js$/.exec(url);
      return match === null ? [] : [match[1]!];
    }),
  );
}

describe("what a command loads", () => {
  it("lineage loads the database and Arrow packages bundled, one file each", async () => {
    const project = await createProjectFixture(diamondProject());
    try {
      const loaded = await urlsLoadedBy(["lineage"], project.dir);
      for (const name of ["kysely", "apache-arrow"]) {
        expect(loaded.filter((url) => url.endsWith(`/dist/vendor/${name}.js`))).toHaveLength(1);
        expect(loaded.filter((url) => url.includes(`/node_modules/${name}/`))).toEqual([]);
      }
    } finally {
      await project.remove();
    }
  });

  it("--version loads commander alone: no database, Arrow or inference client", async () => {
    for (const args of [["--version"], ["-V"]]) {
      expect([...(await packagesLoadedBy(args))], args.join(" ")).toEqual(["commander"]);
    }
  });
});
