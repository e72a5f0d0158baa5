import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { commandsToLoad } from "../../src/cli/program.js";
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
 * The package's modules (`node_modules/<name>/`) that `strata ARGS` loads, recorded by a module
 * resolve hook registered before the binary starts.
 */
async function packagesLoadedBy(args: ReadonlyArray<string>): Promise<ReadonlySet<string>> {
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
      { encoding: "utf8", cwd: dir },
    );
    expect(run.status, run.stderr).toBe(0);
    const urls = (await readFile(log, "utf8")).split("\n");
    return new Set(
      urls.flatMap((url) => {
        const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
        return match === null ? [] : [match[1]!];
      }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("what a command loads", () => {
  it("--version loads commander alone: no database, Arrow or inference client", async () => {
    for (const args of [["--version"], ["-V"]]) {
      expect([...(await packagesLoadedBy(args))], args.join(" ")).toEqual(["commander"]);
    }
  });
});
