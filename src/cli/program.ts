import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { StrataError } from "../errors.js";
import { errorMessage } from "../util/error-message.js";
import type { CliContext, GlobalOptions } from "./cli-context.js";
import { type CliIo, redactingIo, writeLine } from "./cli-io.js";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./exit-codes.js";

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./exit-codes.js";

/** Runs one command's body with the invocation's context; set by {@link runCli}. */
export type CommandRunner = (body: (ctx: CliContext) => Promise<unknown>) => Promise<void>;

type Register = (program: Command, run: CommandRunner) => void;

/**
 * Every top-level command, in help order, with the module that registers it. A command's module
 * (and what it imports: the database drivers, the inference client, Arrow...) is loaded only
 * when that command runs, or when the help or an unknown command needs them all.
 */
const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<Register>]> = [
  ["list", async () => (await import("./commands/list.js")).registerListCommand],
  ["lineage", async () => (await import("./commands/lineage.js")).registerLineageCommand],
  [
    "materialize",
    async () => (await import("./commands/materialize.js")).registerMaterializeCommand,
  ],
  ["runs", async () => (await import("./commands/runs.js")).registerRunsCommands],
  ["costs", async () => (await import("./commands/costs.js")).registerCostsCommand],
  ["sim", async () => (await import("./commands/sim.js")).registerSimCommand],
  ["db", async () => (await import("./commands/db.js")).registerDbCommands],
  ["init", async () => (await import("./commands/init.js")).registerInitCommand],
];

/** The program's own options; the ones that take a value, for {@link commandsToLoad}. */
const GLOBAL_FLAGS = new Set(["--verbose"]);
const GLOBAL_OPTIONS_WITH_VALUE = new Set(["--project", "--database-url"]);
const VERSION_FLAGS = new Set(["-V", "--version"]);

const VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

/**
 * Which commands `argv` needs registered for commander to parse it exactly as it would with
 * every command: the named command alone; none for `--version` before any command; all of them
 * for the help, no command, an unknown command or anything this scan does not understand.
 *
 * @example
 * commandsToLoad(["--project", "a.ts", "list", "--json"]); // ["list"]
 */
export function commandsToLoad(argv: ReadonlyArray<string>): ReadonlyArray<string> {
  const all = COMMANDS.map(([name]) => name);
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (VERSION_FLAGS.has(arg)) {
      version = true;
    } else if (GLOBAL_FLAGS.has(arg)) {
      // a flag of the program: keep looking
    } else if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) {
      i++;
    } else if ([...GLOBAL_OPTIONS_WITH_VALUE].some((o) => arg.startsWith(`${o}=`))) {
      // --project=FILE
    } else if (arg.startsWith("-")) {
      // the help, `--`, or an option the program does not have: commander decides
      return version ? [] : all;
    } else {
      // the first operand: a command, or an unknown one that needs every name for suggestions
      if (version) return [];
      return all.includes(arg) ? [arg] : all;
    }
  }
  return version ? [] : all;
}

/**
 * Runs the strata CLI with `argv` (without the node and script entries) and returns the exit code.
 *
 * @example
 * const code = await runCli(["db", "status"], processIo());
 */
export async function runCli(argv: ReadonlyArray<string>, rawIo: CliIo): Promise<number> {
  // Nothing this invocation prints carries a secret it knows of.
  const io = redactingIo(rawIo);
  let exitCode = EXIT_OK;
  let context: CliContext | undefined;
  const program = new Command("strata");

  const run: CommandRunner = async (body) => {
    const { CliContext } = await import("./cli-context.js");
    context = new CliContext(io, program.opts<GlobalOptions>());
    const code = await body(context);
    if (typeof code === "number") exitCode = code;
  };

  program
    .description("asset-centric data pipelines with LLM inference and an exact cost ledger")
    .version(VERSION, "-V, --version")
    .option("--project <file>", "the project file (default ./strata.config.ts or STRATA_PROJECT)")
    .option(
      "--database-url <url>",
      "Postgres URL (default DATABASE_URL, else the embedded database)",
    )
    .option("--verbose", "print stack traces with errors")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, "strata: ")),
    })
    .showSuggestionAfterError(true);

  try {
    const wanted = new Set(commandsToLoad(argv));
    const registers = await Promise.all(
      COMMANDS.filter(([name]) => wanted.has(name)).map(([, load]) => load()),
    );
    for (const register of registers) register(program, run);
    await program.parseAsync(argv as string[], { from: "user" });
  } catch (error) {
    // a right the role lacks, found only when a command wrote: a usage error naming it
    const url = context?.databaseUrl;
    let denied: StrataError | undefined;
    const usage =
      error instanceof CommanderError || (error instanceof StrataError && error.isUsageError);
    if (!usage) {
      // loaded on this error path only: the schema check imports the database layer
      const [{ permissionError }, { postgresRole }] = await Promise.all([
        import("../store/schema-check.js"),
        import("../store/postgres-url.js"),
      ]);
      denied = permissionError(error, url === undefined ? {} : postgresRole(url));
    }
    exitCode = reportError(denied ?? error, io, program.opts<GlobalOptions>().verbose === true);
  } finally {
    await context?.close().catch(() => {});
  }
  return exitCode;
}

function reportError(error: unknown, io: CliIo, verbose: boolean): number {
  if (error instanceof CommanderError) {
    // help and --version exit through here with code 0; commander already printed the message
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (error instanceof StrataError) {
    writeLine(io.stderr, `strata: ${error.message}`);
    if (verbose) writeLine(io.stderr, error.stack ?? "");
    return error.isUsageError ? EXIT_USAGE : EXIT_FAILED;
  }
  const message = errorMessage(error);
  writeLine(io.stderr, `strata: unexpected error: ${message}`);
  if (verbose && error instanceof Error) writeLine(io.stderr, error.stack ?? "");
  return EXIT_FAILED;
}
