import { type Command, Option } from "commander";
import { StrataError } from "../../errors.js";
import { lineageToDot } from "../../lineage/lineage-dot.js";
import { lineageToJson } from "../../lineage/lineage-json.js";
import { lineageToMermaid } from "../../lineage/lineage-mermaid.js";
import { lineageToTree } from "../../lineage/lineage-tree.js";
import { lineageToOpenLineage } from "../../lineage/openlineage.js";
import { selectAssets } from "../../lineage/selection-evaluator.js";
import { closestMatch } from "../../util/edit-distance.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";

const FORMATS = ["tree", "json", "dot", "mermaid", "openlineage"] as const;

interface LineageOptions {
  select?: string;
  format: (typeof FORMATS)[number];
  upstream?: boolean;
  downstream?: boolean;
}

/** `strata lineage [ASSET] [--select SEL] [--format ...] [--upstream|--downstream]` */
export function registerLineageCommand(program: Command, run: CommandRunner): void {
  program
    .command("lineage")
    .description("print the lineage graph of a selection")
    .argument("[asset]", "an asset key; with --upstream/--downstream, its ancestors or descendants")
    .option("--select <selection>", "asset selection (default: every asset)")
    .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("tree"))
    .option("--upstream", "the asset and everything it depends on")
    .option("--downstream", "the asset and everything that depends on it")
    .action((asset: string | undefined, options: LineageOptions) =>
      run(async (ctx: CliContext) => {
        // A pure export of the declared graph: it needs no database.
        const project = await ctx.project();
        const keys = lineageKeys(project.graph, asset, options);
        const { graph } = project;
        const out = ctx.io.stdout;
        switch (options.format) {
          case "json":
            writeLine(out, JSON.stringify(lineageToJson(graph, keys), null, 2));
            break;
          case "dot":
            writeLine(out, lineageToDot(graph, keys));
            break;
          case "mermaid":
            writeLine(out, lineageToMermaid(graph, keys));
            break;
          case "openlineage":
            writeLine(
              out,
              JSON.stringify(
                lineageToOpenLineage(graph, keys, { projectName: project.name }),
                null,
                2,
              ),
            );
            break;
          default:
            writeLine(out, lineageToTree(graph, keys, { color: out.isTTY === true }));
        }
      }),
    );
}

function lineageKeys(
  graph: Parameters<typeof selectAssets>[1],
  asset: string | undefined,
  options: LineageOptions,
): ReadonlyArray<string> {
  if (asset === undefined) {
    if (options.upstream || options.downstream) {
      throw new StrataError(
        "bad_usage",
        "--upstream and --downstream need an asset: strata lineage KEY --upstream",
      );
    }
    return selectAssets(options.select ?? "*", graph);
  }
  if (options.select !== undefined) {
    throw new StrataError("bad_usage", "give either an asset or --select, not both");
  }
  if (!graph.has(asset)) {
    const hint = closestMatch(asset, graph.keys());
    throw new StrataError(
      "empty_selection",
      `no asset has the key "${asset}"; ${hint === undefined ? 'see "strata list"' : `did you mean "${hint}"?`}`,
    );
  }
  const keys = new Set<string>([asset]);
  if (options.upstream) for (const k of graph.upstream([asset]).keys()) keys.add(k);
  if (options.downstream) for (const k of graph.downstream([asset]).keys()) keys.add(k);
  return [...keys];
}
