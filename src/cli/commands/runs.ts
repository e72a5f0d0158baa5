import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import type { Command } from "commander";
import { pruneRuns } from "../../store/retention.js";
import { runChainSummary } from "../../store/run-chain.js";
import {
  findRun,
  listRuns,
  type RunSummary,
  runInputs,
  runSteps,
} from "../../store/run-queries.js";
import { formatUsd } from "../../util/usd.js";
import { resolveStorageRoot, storedValuePath } from "../../values/storage-path.js";
import { removeStaleTempFiles } from "../../values/temp-file.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import { EXIT_FAILED, EXIT_OK } from "../exit-codes.js";
import { parseOlderThan, parsePositiveInt, parseUsd } from "../option-parsers.js";
import type { CommandRunner } from "../program.js";
import { resumePlan } from "../run-plan.js";
import { formatDuration } from "../run-progress.js";
import { outputWidth, renderTable } from "../text-table.js";

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
                maxCostUsd: r.maxCostUsd,
                error: r.error,
                resumedFrom: r.resumedFrom,
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
        writeLine(
          ctx.io.stdout,
          renderTable({
            columns: [
              // a prefix of the id is what `runs show` and `runs resume` take
              { header: "run", fit: "end", minWidth: 13 },
              { header: "status" },
              { header: "started (UTC)" },
              { header: "duration", align: "right" },
              { header: "cost", align: "right" },
              { header: "selection", fit: "middle" },
            ],
            rows: list.map((r) => {
              const duration = durationOf(r.startedAt, r.finishedAt);
              return [
                r.id,
                r.status,
                minuteOf(r.startedAt),
                duration === null ? "" : formatDuration(duration),
                formatUsd(r.costUsd),
                r.selection + (r.partitions.length > 0 ? ` [${r.partitions.join(", ")}]` : ""),
              ];
            }),
            maxWidth: outputWidth(ctx.io.stdout),
          }),
        );
        // the run a resume resumed, whole: it is what `runs show` takes
        for (const r of list) {
          if (r.resumedFrom !== null)
            writeLine(ctx.io.stdout, `${r.id} resumed from ${r.resumedFrom}`);
        }
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
        const chain = await runChainSummary(store.db, summary.id);
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
              maxCostUsd: summary.maxCostUsd,
              spentUsd: chain.spentUsd,
              error: summary.error,
              resumedFrom: summary.resumedFrom,
              resumedBy: chain.resumedBy,
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
        if (summary.resumedFrom !== null)
          writeLine(ctx.io.stdout, `  resumed from ${summary.resumedFrom}`);
        if (chain.resumedBy !== null) writeLine(ctx.io.stdout, `  resumed by ${chain.resumedBy}`);
        writeLine(ctx.io.stdout, `  cost      ${formatUsd(summary.costUsd)}`);
        writeLine(ctx.io.stdout, `  ${budgetLine(summary, chain.spentUsd)}`);
        if (summary.error !== null) writeLine(ctx.io.stdout, `  error     ${summary.error}`);
        const withErrors = steps.some((s) => s.error !== null);
        writeLine(
          ctx.io.stdout,
          renderTable({
            columns: [
              { header: "step", fit: "middle" },
              { header: "status" },
              { header: "rows", align: "right" },
              { header: "duration", align: "right" },
              { header: "cost", align: "right" },
              ...(withErrors ? [{ header: "error", fit: "wrap" as const, minWidth: 20 }] : []),
            ],
            rows: steps.map((s) => {
              const duration = s.startedAt === null ? null : durationOf(s.startedAt, s.finishedAt);
              return [
                s.partitionKey === null ? s.assetKey : `${s.assetKey}[${s.partitionKey}]`,
                s.status,
                s.rowCount === null ? "" : String(s.rowCount),
                duration === null ? "" : formatDuration(duration),
                formatUsd(s.costUsd),
                ...(withErrors ? [s.error ?? ""] : []),
              ];
            }),
            maxWidth: outputWidth(ctx.io.stdout),
          }),
        );
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
    .option(
      "--max-cost <usd>",
      "raise the cap, which covers the run and all its resumes together (default: the run's cap)",
    )
    .option("--concurrency <n>", "assets built at once")
    .option("--json", "print the result as JSON and nothing else on stdout")
    .action((id: string, _options: ResumeOptions, command: Command) =>
      run(async (ctx: CliContext) => {
        const options = command.optsWithGlobals<ResumeOptions>();
        const maxCost = options.maxCost === undefined ? undefined : parseUsd(options.maxCost);
        const concurrency =
          options.concurrency === undefined
            ? undefined
            : parsePositiveInt(options.concurrency, "--concurrency");
        const { project, store } = await ctx.projectAndStore();
        const result = await resumePlan(ctx, project, store, id, {
          maxCostUsd: maxCost,
          concurrency,
          json: options.json === true,
        });
        return result.status === "succeeded" ? EXIT_OK : EXIT_FAILED;
      }),
    );
}

function registerPrune(runs: Command, run: CommandRunner): void {
  runs
    .command("prune")
    .description(
      "delete what old runs left: ledger rows, superseded materializations with their Arrow files, temp files of killed writes",
    )
    .addHelpText(
      "after",
      [
        "",
        "Kept whatever their age: the latest successful materialization of every asset partition,",
        "everything of runs newer than --older-than, and every materialization a kept one read",
        "(transitively, with its Arrow file), so no kept materialization loses its provenance.",
        "Temp files (*.arrow.<pid>...tmp) of writes killed on this host are removed when their",
        "process is gone; those of other hosts when older than --older-than.",
      ].join("\n"),
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
        const root = await storageRootOfContext(ctx);
        if (options.dryRun !== true) {
          for (const path of result.storagePaths)
            await rm(storedValuePath(root, path), { force: true });
        }
        // Writes killed mid-way (SIGKILL) leave temp files; another host's are judged by age.
        const tempFiles = await removeStaleTempFiles(root, {
          recursive: true,
          otherHostsBefore: before,
          dryRun: options.dryRun === true,
        });
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
              tempFiles: tempFiles.length,
            }),
          );
        } else {
          writeLine(
            ctx.io.stdout,
            `${verb} ${result.runs} run(s), ${result.materializations} materialization(s) with their Arrow files, ${result.ledgerRows} ledger row(s), ${tempFiles.length} temp file(s) of killed writes; the latest materialization of every asset partition is kept, with every materialization a kept one read`,
          );
        }
      }),
    );
}

/** `budget    $0.0011 spent of $0.002 (with the runs it resumes)`, or spent with no cap. */
function budgetLine(run: RunSummary, spentUsd: string): string {
  const whose = run.resumedFrom === null ? "" : " (with the runs it resumes)";
  return run.maxCostUsd === null
    ? `budget    no cap; ${formatUsd(spentUsd)} spent${whose}`
    : `budget    ${formatUsd(spentUsd)} spent of ${formatUsd(run.maxCostUsd)}${whose}`;
}

function durationOf(startedAt: Date, finishedAt: Date | null): number | null {
  return finishedAt === null ? null : finishedAt.getTime() - startedAt.getTime();
}

/** `2026-12-03 09:29`: a UTC time to the minute, as the runs table shows it. */
function minuteOf(date: Date): string {
  return date.toISOString().slice(0, 16).replace("T", " ");
}

/**
 * Where the project's values are: `STRATA_STORAGE`, else the project's `storage.root` (its file
 * is loaded when there is one), else `.strata/storage` beside the project file.
 */
async function storageRootOfContext(ctx: CliContext): Promise<string> {
  if (!existsSync(ctx.projectFile)) return resolveStorageRoot(ctx.projectDir, { env: ctx.io.env });
  const { projectStorageRoot } = await import("../../materialize/run-project.js");
  return projectStorageRoot(await ctx.project(), ctx.io.env);
}
