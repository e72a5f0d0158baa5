import type { Command } from "commander";
import { migrate, migrationStatus } from "../../store/migrator.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";

/** `strata db migrate` and `strata db status`. */
export function registerDbCommands(program: Command, run: CommandRunner): void {
  const db = program.command("db").description("manage strata's database schema");

  db.command("migrate")
    .description(
      "apply pending migrations (also done automatically when a command opens the store)",
    )
    .action(() =>
      run(async (ctx: CliContext) => {
        const store = await ctx.store({ migrate: false });
        const { applied } = await migrate(store.db);
        writeLine(
          ctx.io.stdout,
          applied.length === 0
            ? `${store.location}: up to date`
            : `${store.location}: applied ${applied.join(", ")}`,
        );
      }),
    );

  db.command("status")
    .description("list applied and pending migrations")
    .option("--json", "print JSON")
    .action((options: { json?: boolean }) =>
      run(async (ctx: CliContext) => {
        const store = await ctx.store({ migrate: false });
        const states = await migrationStatus(store.db);
        if (options.json) {
          writeLine(
            ctx.io.stdout,
            JSON.stringify({ location: store.location, migrations: states }),
          );
          return;
        }
        writeLine(ctx.io.stdout, store.location);
        for (const s of states) {
          const when = s.appliedAt === null ? "" : `  ${s.appliedAt.toISOString()}`;
          writeLine(ctx.io.stdout, `  ${s.status.padEnd(8)} ${s.name}${when}`);
        }
      }),
    );
}
