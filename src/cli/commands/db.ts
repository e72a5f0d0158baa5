import type { Command } from "commander";
import { StoreError } from "../../errors.js";
import { schemaDriftError } from "../../store/schema-check.js";
import { migrateAndRepair, schemaStatus } from "../../store/schema-guard.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";

/** `strata db migrate` and `strata db status`. */
export function registerDbCommands(program: Command, run: CommandRunner): void {
  const db = program.command("db").description("manage strata's database schema");

  db.command("migrate")
    .description(
      "apply pending migrations (also done automatically when a command opens the store) and recreate tables, columns, views and indexes dropped since",
    )
    .action(() =>
      run(async (ctx: CliContext) => {
        const store = await ctx.store({ migrate: false });
        const result = await migrateAndRepair(store.db);
        const done = [
          ...(result.rerecorded.length > 0
            ? [`recorded ${result.rerecorded.join(", ")} as applied again`]
            : []),
          ...(result.applied.length > 0 ? [`applied ${result.applied.join(", ")}`] : []),
          ...(result.repaired.length > 0 ? [`recreated ${result.repaired.join(", ")}`] : []),
        ];
        writeLine(
          ctx.io.stdout,
          `${store.location}: ${done.length === 0 ? "up to date" : done.join("; ")}`,
        );
        if (result.unrepaired.length > 0) {
          throw new StoreError(
            "schema_drift",
            `schema strata cannot be repaired from the migrations: ${result.unrepaired.join("; ")}; change it back by hand or restore a backup`,
          );
        }
      }),
    );

  db.command("status")
    .description("list applied and pending migrations, and what changed in the schema since")
    .option("--json", "print JSON")
    .action((options: { json?: boolean }) =>
      run(async (ctx: CliContext) => {
        const store = await ctx.store({ migrate: false });
        const { migrations: states, problems } = await schemaStatus(store.db);
        if (options.json) {
          writeLine(
            ctx.io.stdout,
            JSON.stringify({
              location: store.location,
              migrations: states,
              problems: problems.map((p) => ({ message: p.message, repairable: p.repairable })),
            }),
          );
        } else {
          writeLine(ctx.io.stdout, store.location);
          for (const s of states) {
            const when = s.appliedAt === null ? "" : `  ${s.appliedAt.toISOString()}`;
            writeLine(ctx.io.stdout, `  ${s.status.padEnd(8)} ${s.name}${when}`);
          }
        }
        if (problems.length > 0) throw schemaDriftError(problems);
      }),
    );
}
