import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { StrataError } from "../errors.js";
import { postgresRole } from "../store/postgres-url.js";
import { permissionError } from "../store/schema-check.js";
import { CliContext, type GlobalOptions } from "./cli-context.js";
import { type CliIo, redactingIo, writeLine } from "./cli-io.js";
import { registerCostsCommand } from "./commands/costs.js";
import { registerDbCommands } from "./commands/db.js";
import { registerInitCommand } from "./commands/init.js";
import { registerLineageCommand } from "./commands/lineage.js";
import { registerListCommand } from "./commands/list.js";
import { registerMaterializeCommand } from "./commands/materialize.js";
import { registerRunsCommands } from "./commands/runs.js";
import { registerSimCommand } from "./commands/sim.js";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./exit-codes.js";

export { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./exit-codes.js";

/** Runs one command's body with the invocation's context; set by {@link runCli}. */
export type CommandRunner = (body: (ctx: CliContext) => Promise<unknown>) => Promise<void>;

const VERSION: string = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

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

  registerListCommand(program, run);
  registerLineageCommand(program, run);
  registerMaterializeCommand(program, run);
  registerRunsCommands(program, run);
  registerCostsCommand(program, run);
  registerSimCommand(program, run);
  registerDbCommands(program, run);
  registerInitCommand(program, run);

  try {
    await program.parseAsync(argv as string[], { from: "user" });
  } catch (error) {
    // a right the role lacks, found only when a command wrote: a usage error naming it
    const url = context?.databaseUrl;
    const denied =
      error instanceof StrataError && error.isUsageError
        ? undefined
        : permissionError(error, url === undefined ? {} : postgresRole(url));
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
  const message = error instanceof Error ? error.message : String(error);
  writeLine(io.stderr, `strata: unexpected error: ${message}`);
  if (verbose && error instanceof Error) writeLine(io.stderr, error.stack ?? "");
  return EXIT_FAILED;
}
