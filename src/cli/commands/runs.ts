import Table from "cli-table3";
import type { Command } from "commander";
import { findRun, listRuns, runSteps } from "../../store/run-queries.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { parsePositiveInt } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { formatDuration } from "../run-progress.js";

/** `strata runs [--json]`, `strata runs show ID [--json]` */
export function registerRunsCommands(program: Command, run: CommandRunner): void {
  const runs = program
    .command("runs")
    .description("past runs, newest first")
    .option("--json", "print JSON")
    .option("--limit <n>", "how many runs to list (default 50)")
    .action((options: { json?: boolean; limit?: string }) =>
      run(async (ctx: CliContext) => {
        const limit = options.limit === undefined ? 50 : parsePositiveInt(options.limit, "--limit");
        const store = await ctx.store();
        const list = await listRuns(store.db, limit);
        if (options.json) {
          writeLine(
            ctx.io.stdout,
            JSON.stringify(
              list.map((r) => ({
                id: r.id,
                status: r.status,
                selection: r.selection,
                partitions: r.partitions,
                startedAt: r.startedAt.toISOString(),
                finishedAt: r.finishedAt?.toISOString() ?? null,
                durationMs: durationOf(r.startedAt, r.finishedAt),
                costUsd: r.costUsd,
                error: r.error,
              })),
            ),
          );
          return;
        }
        if (list.length === 0) {
          writeLine(
            ctx.io.stdout,
            "no runs yet; start one with \"strata materialize --select '*'\"",
          );
          return;
        }
        const table = new Table({
          head: ["run", "status", "selection", "started", "duration", "cost USD"],
          style: { head: [], border: [] },
        });
        for (const r of list) {
          const duration = durationOf(r.startedAt, r.finishedAt);
          table.push([
            r.id,
            r.status,
            r.selection + (r.partitions.length > 0 ? ` [${r.partitions.join(", ")}]` : ""),
            r.startedAt.toISOString(),
            duration === null ? "" : formatDuration(duration),
            r.costUsd,
          ]);
        }
        writeLine(ctx.io.stdout, table.toString());
      }),
    );

  runs
    .command("show")
    .description("the steps of one run with status, rows, duration and error")
    .argument("<id>", "run id (or a unique prefix)")
    .option("--json", "print JSON")
    .action((id: string, options: { json?: boolean }) =>
      run(async (ctx: CliContext) => {
        const store = await ctx.store();
        const summary = await findRun(store.db, id);
        const steps = await runSteps(store.db, summary.id);
        if (options.json) {
          writeLine(
            ctx.io.stdout,
            JSON.stringify({
              id: summary.id,
              status: summary.status,
              selection: summary.selection,
              partitions: summary.partitions,
              startedAt: summary.startedAt.toISOString(),
              finishedAt: summary.finishedAt?.toISOString() ?? null,
              costUsd: summary.costUsd,
              error: summary.error,
              resumedFrom: summary.resumedFrom,
              steps: steps.map((s) => ({
                materializationId: s.materializationId,
                key: s.assetKey,
                partition: s.partitionKey,
                status: s.status,
                rows: s.rowCount,
                durationMs: s.startedAt === null ? null : durationOf(s.startedAt, s.finishedAt),
                error: s.error,
                dataVersion: s.dataVersion,
                promptTokens: s.promptTokens,
                cachedTokens: s.cachedTokens,
                completionTokens: s.completionTokens,
                costUsd: s.costUsd,
              })),
            }),
          );
          return;
        }
        writeLine(ctx.io.stdout, `run ${summary.id}: ${summary.status}`);
        writeLine(
          ctx.io.stdout,
          `  selection ${summary.selection}${summary.partitions.length > 0 ? ` [${summary.partitions.join(", ")}]` : ""}`,
        );
        writeLine(ctx.io.stdout, `  started   ${summary.startedAt.toISOString()}`);
        if (summary.finishedAt !== null)
          writeLine(ctx.io.stdout, `  finished  ${summary.finishedAt.toISOString()}`);
        writeLine(ctx.io.stdout, `  cost      $${summary.costUsd}`);
        if (summary.error !== null) writeLine(ctx.io.stdout, `  error     ${summary.error}`);
        const table = new Table({
          head: ["step", "status", "rows", "duration", "cost USD", "error"],
          style: { head: [], border: [] },
          colWidths: [null, null, null, null, null, 60] as unknown as number[],
          wordWrap: true,
        });
        for (const s of steps) {
          const duration = s.startedAt === null ? null : durationOf(s.startedAt, s.finishedAt);
          table.push([
            s.partitionKey === null ? s.assetKey : `${s.assetKey}[${s.partitionKey}]`,
            s.status,
            s.rowCount === null ? "" : String(s.rowCount),
            duration === null ? "" : formatDuration(duration),
            s.costUsd,
            s.error ?? "",
          ]);
        }
        writeLine(ctx.io.stdout, table.toString());
      }),
    );
}

function durationOf(startedAt: Date, finishedAt: Date | null): number | null {
  return finishedAt === null ? null : finishedAt.getTime() - startedAt.getTime();
}
