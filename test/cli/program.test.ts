import { describe, expect, it } from "vitest";
import { commandsToLoad } from "../../src/cli/program.js";

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
