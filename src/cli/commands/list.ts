import Table from "cli-table3";
import type { Command } from "commander";
import { selectAssets } from "../../lineage/selection-evaluator.js";
import { assessAssets } from "../../materialize/asset-status.js";
import { latestMaterializations } from "../../store/materialization-queries.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";

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
        const table = new Table({
          head: ["asset", "group", "status", "last materialized", "deps"],
          style: { head: [], border: [] },
        });
        for (const r of rows) {
          const status =
            r.partitions === undefined
              ? r.status
              : `${r.status} (${r.partitions.fresh}/${r.partitions.total} fresh)`;
          const causes = r.causes.length > 0 ? `\n${r.causes.map((c) => `  ${c}`).join("\n")}` : "";
          table.push([
            r.key,
            r.group,
            status + causes,
            r.lastMaterializedAt ?? "never",
            r.deps.join(", "),
          ]);
        }
        writeLine(ctx.io.stdout, table.toString());
      }),
    );
}
