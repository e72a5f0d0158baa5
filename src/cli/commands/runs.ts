import { rm } from "node:fs/promises";
import Table from "cli-table3";
import type { Command } from "commander";
import { StrataError } from "../../errors.js";
import {
  planMaterialization,
  remainingPlan,
  stepId,
} from "../../materialize/materialization-plan.js";
import { callsLostInFlight } from "../../store/cost-ledger.js";
import { pruneRuns } from "../../store/retention.js";
import {
  findRun,
  listRuns,
  runInputs,
  runSteps,
  succeededInRunChain,
} from "../../store/run-queries.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { EXIT_FAILED, EXIT_OK } from "../exit-codes.js";
import { parseOlderThan, parsePositiveInt, parseUsd } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { runPlan } from "../run-plan.js";
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

  registerResume(runs, run);
  registerPrune(runs, run);

  runs
    .command("show")
    .description("the steps of one run with status, rows, duration and error")
    .argument("<id>", "run id (or a unique prefix)")
    .option("--json", "print JSON")
    .option("--lineage", "also show which upstream materializations fed each step")
    .action((id: string, _options: { json?: boolean; lineage?: boolean }, command: Command) =>
      run(async (ctx: CliContext) => {
        // `runs` has a --json of its own, and commander hands `runs show ID --json` to the
        // parent: merge the parent's options in
        const options = command.optsWithGlobals<{ json?: boolean; lineage?: boolean }>();
        const store = await ctx.store();
        const summary = await findRun(store.db, id);
        const steps = await runSteps(store.db, summary.id);
        const inputs = options.lineage ? await runInputs(store.db, summary.id) : [];
        const inputsOf = (materializationId: string) =>
          inputs
            .filter((i) => i.materializationId === materializationId)
            .map((i) => ({
              key: i.assetKey,
              partition: i.partitionKey,
              materializationId: i.inputMaterializationId,
              runId: i.runId,
              finishedAt: i.finishedAt?.toISOString() ?? null,
              dataVersion: i.dataVersion,
            }));
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
                ...(options.lineage ? { inputs: inputsOf(s.materializationId) } : {}),
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
        const withErrors = steps.some((s) => s.error !== null);
        const table = new Table({
          head: [
            "step",
            "status",
            "rows",
            "duration",
            "cost USD",
            ...(withErrors ? ["error"] : []),
          ],
          style: { head: [], border: [] },
          ...(withErrors
            ? {
                colWidths: [null, null, null, null, null, 60] as unknown as number[],
                wordWrap: true,
              }
            : {}),
        });
        for (const s of steps) {
          const duration = s.startedAt === null ? null : durationOf(s.startedAt, s.finishedAt);
          table.push([
            s.partitionKey === null ? s.assetKey : `${s.assetKey}[${s.partitionKey}]`,
            s.status,
            s.rowCount === null ? "" : String(s.rowCount),
            duration === null ? "" : formatDuration(duration),
            s.costUsd,
            ...(withErrors ? [s.error ?? ""] : []),
          ]);
        }
        writeLine(ctx.io.stdout, table.toString());
        if (options.lineage) {
          writeLine(ctx.io.stdout, "lineage (what each step read):");
          for (const s of steps) {
            const read = inputsOf(s.materializationId);
            const step = s.partitionKey === null ? s.assetKey : `${s.assetKey}[${s.partitionKey}]`;
            if (read.length === 0) {
              writeLine(ctx.io.stdout, `  ${step}: no upstream inputs`);
              continue;
            }
            writeLine(ctx.io.stdout, `  ${step} read:`);
            for (const i of read) {
              const what = i.partition === null ? i.key : `${i.key}[${i.partition}]`;
              const from = i.runId === summary.id ? "this run" : `run ${i.runId}`;
              writeLine(
                ctx.io.stdout,
                `    ${what} from ${from} at ${i.finishedAt ?? "?"} (data version ${i.dataVersion ?? "?"})`,
              );
            }
          }
        }
      }),
    );
}

interface ResumeOptions {
  maxCost?: string;
  concurrency?: string;
  json?: boolean;
}

function registerResume(runs: Command, run: CommandRunner): void {
  runs
    .command("resume")
    .description(
      "finish a failed, canceled or budget-stopped run, paying only for unanswered documents",
    )
    .argument("<id>", "run id (or a unique prefix)")
    .option("--max-cost <usd>", "the cap for the resumed run (default: the original run's)")
    .option("--concurrency <n>", "assets built at once")
    .option("--json", "print the result as JSON and nothing else on stdout")
    .action((id: string, _options: ResumeOptions, command: Command) =>
      run(async (ctx: CliContext) => {
        const options = command.optsWithGlobals<ResumeOptions>();
        const maxCost = options.maxCost === undefined ? undefined : parseUsd(options.maxCost);
        const { project, store } = await ctx.projectAndStore();
        const original = await findRun(store.db, id);
        if (original.status === "running") {
          throw new StrataError(
            "run_not_resumable",
            `run ${original.id} is still running; wait for it, or cancel it with Ctrl-C, then resume`,
          );
        }
        if (original.status === "succeeded") {
          throw new StrataError(
            "run_not_resumable",
            `run ${original.id} succeeded; there is nothing to resume`,
          );
        }
        const plan = planMaterialization(project.graph, {
          selection: original.selection,
          partitions: original.partitions,
        });
        const done = new Set(
          (await succeededInRunChain(store.db, original.id)).map((s) =>
            stepId(s.assetKey, s.partitionKey),
          ),
        );
        const rest = remainingPlan(plan, done);
        if (rest.steps.length === 0) {
          throw new StrataError(
            "run_not_resumable",
            `every step of run ${original.id} has succeeded; there is nothing to resume`,
          );
        }
        const lost = await callsLostInFlight(store.db, original.id);
        if (lost > 0) {
          writeLine(
            ctx.io.stderr,
            `strata: run ${original.id} had ${lost} call(s) in flight when it stopped; the endpoint may have billed them without strata recording the answers`,
          );
        }
        const saved = original.options as { concurrency?: number; noCache?: boolean };
        const result = await runPlan(ctx, project, store, rest, {
          maxCostUsd: maxCost ?? original.maxCostUsd,
          concurrency:
            options.concurrency !== undefined
              ? parsePositiveInt(options.concurrency, "--concurrency")
              : saved.concurrency,
          noCache: saved.noCache === true,
          json: options.json === true,
          resumedFrom: original.id,
        });
        return result.status === "succeeded" ? EXIT_OK : EXIT_FAILED;
      }),
    );
}

function registerPrune(runs: Command, run: CommandRunner): void {
  runs
    .command("prune")
    .description(
      "delete old runs' ledger rows and the Arrow files of materializations that are no longer the latest",
    )
    .requiredOption("--older-than <age>", "runs that ended longer ago than this (30d, 12h)")
    .option("--dry-run", "say what would be deleted and delete nothing")
    .action((_options: unknown, command: Command) =>
      run(async (ctx: CliContext) => {
        const options = command.optsWithGlobals<{
          olderThan: string;
          dryRun?: boolean;
          json?: boolean;
        }>();
        const before = parseOlderThan(options.olderThan);
        const store = await ctx.store();
        const result = await pruneRuns(store.db, before, {
          dryRun: options.dryRun === true,
        });
        if (options.dryRun !== true) {
          for (const path of result.storagePaths) await rm(path, { force: true });
        }
        const verb = options.dryRun ? "would delete" : "deleted";
        if (options.json) {
          writeLine(
            ctx.io.stdout,
            JSON.stringify({
              dryRun: options.dryRun === true,
              runs: result.runs,
              materializations: result.materializations,
              ledgerRows: result.ledgerRows,
              files: result.storagePaths.length,
            }),
          );
        } else {
          writeLine(
            ctx.io.stdout,
            `${verb} ${result.runs} run(s), ${result.materializations} materialization(s) with their Arrow files, ${result.ledgerRows} ledger row(s); the latest materialization of every asset partition is kept`,
          );
        }
      }),
    );
}

function durationOf(startedAt: Date, finishedAt: Date | null): number | null {
  return finishedAt === null ? null : finishedAt.getTime() - startedAt.getTime();
}
