import type { Command } from "commander";
import { selectAssets } from "../../lineage/selection-evaluator.js";
import { assessAssets } from "../../materialize/asset-status.js";
import { latestMaterializations } from "../../store/materialization-queries.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";
import { outputWidth, renderTable } from "../text-table.js";

/** `strata list [--select SEL] [--json]` */
export function registerListCommand(program: Command, run: CommandRunner): void {
  program
    .command("list")
    .description("list assets with their group, deps, status and last materialization")
    .option("--select <selection>", "asset selection (default: every asset)")
    .option("--json", "print JSON")
    .action((options: { select?: string; json?: boolean }) =>
      run(async (ctx: CliContext) => {
        const { project, store } = await ctx.projectAndStore();
        const { graph } = project;
        const keys = selectAssets(options.select ?? "*", graph);
        const reports = assessAssets(graph, keys, await latestMaterializations(store.db, keys));
        const rows = keys.map((key) => {
          const asset = graph.get(key);
          const report = reports.get(key)!;
          const partitioned = asset.partitions !== null;
          return {
            key,
            group: asset.group,
            deps: asset.deps.map((d) => d.key),
            status: report.status,
            lastMaterializedAt: report.lastMaterializedAt?.toISOString() ?? null,
            causes: report.causes,
            ...(partitioned
              ? {
                  partitions: {
                    total: report.partitions.length,
                    fresh: report.partitions.filter((p) => p.status === "fresh").length,
                    stale: report.partitions.filter((p) => p.status === "stale").length,
                    missing: report.partitions.filter((p) => p.status === "missing").length,
                  },
                }
              : {}),
          };
        });
        if (options.json) {
          writeLine(ctx.io.stdout, JSON.stringify(rows, null, 2));
          return;
        }
        if (rows.length === 0) {
          writeLine(ctx.io.stdout, "no assets match the selection");
          return;
        }
        writeLine(
          ctx.io.stdout,
          renderTable({
            columns: [
              { header: "asset", fit: "middle" },
              { header: "group", fit: "end", minWidth: 8 },
              { header: "status", fit: "wrap" },
              { header: "materialized (UTC)" },
              { header: "deps", fit: "wrap" },
            ],
            rows: rows.map((r) => {
              const status =
                r.partitions === undefined
                  ? r.status
                  : `${r.status} (${r.partitions.fresh}/${r.partitions.total} fresh)`;
              const causes = r.causes.map((c) => `\n  ${c}`).join("");
              return [
                r.key,
                r.group,
                status + causes,
                r.lastMaterializedAt === null
                  ? "never"
                  : r.lastMaterializedAt.slice(0, 16).replace("T", " "),
                r.deps.join(", "),
              ];
            }),
            maxWidth: outputWidth(ctx.io.stdout),
          }),
        );
      }),
    );
}
