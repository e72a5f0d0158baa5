import { existsSync, statSync } from "node:fs";
import { appendFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { StrataError } from "../../errors.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";

/** The env var the scaffolded project reads its endpoint's base URL from. */
export const ENDPOINT_URL_ENV = "STRATA_ENDPOINT_URL";

/** Where `strata sim` listens by default: the scaffolded project's endpoint when the env var is unset. */
export const DEFAULT_SIM_URL = "http://127.0.0.1:8000/v1";

/**
 * The root of the strata package this command runs from (this file is
 * `<root>/dist/cli/commands/init.js`). strata is not published to the npm registry, where the
 * name belongs to an unrelated package: a new project depends on this copy through a `file:` path.
 */
const STRATA_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * The `strata` dependency of a project in `dir`: `file:` and the path from `dir` to the package
 * root this command runs from, relative (as `npm install ../strata` writes it) and with `/`.
 */
function strataDependency(dir: string): string {
  const path = relative(dir, STRATA_ROOT).split(sep).join("/");
  return `file:${path === "" ? "." : path}`;
}

/** What `strata init` does with one file. */
interface ScaffoldFile {
  readonly name: string;
  readonly content: string;
  /**
   * When the file already exists: `refuse` (the command fails and writes nothing), `skip` (it is
   * left alone) or `append-gitignore` (`.strata/` is added unless the file ignores it already).
   */
  readonly ifExists: "refuse" | "skip" | "append-gitignore";
}

/** `strata init [DIR]`: scaffolds a project with one source asset and one inference asset. */
export function registerInitCommand(program: Command, run: CommandRunner): void {
  program
    .command("init")
    .description("scaffold a new strata project (strata.config.ts, .gitignore, package.json)")
    .argument("[dir]", "the project directory, created when missing", ".")
    .action((dir: string) =>
      run(async (ctx: CliContext) => {
        await initProject(ctx, resolve(ctx.io.cwd, dir));
      }),
    );
}

async function initProject(ctx: CliContext, dir: string): Promise<void> {
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new StrataError("bad_usage", `"${dir}" is a file, not a directory; pass a directory`);
  }
  const dependency = strataDependency(dir);
  const files = scaffoldFiles(packageName(dir), dependency);
  // Every target is checked before any is written: a refusal leaves the directory as it was.
  for (const file of files) {
    if (file.ifExists === "refuse" && existsSync(join(dir, file.name))) {
      throw new StrataError(
        "bad_usage",
        `"${join(dir, file.name)}" already exists; strata init never overwrites a file: move it aside or init another directory`,
      );
    }
  }
  await mkdir(dir, { recursive: true });
  const report: string[] = [];
  for (const file of files) {
    const path = join(dir, file.name);
    if (!existsSync(path)) {
      // "wx": fail rather than overwrite a file that appeared since the check
      await writeFile(path, file.content, { flag: "wx" });
      report.push(`  created  ${file.name}`);
    } else if (file.ifExists === "append-gitignore") {
      const current = await readFile(path, "utf8");
      if (/^\/?\.strata\/?\s*$/m.test(current)) {
        report.push(`  kept     ${file.name} (it already ignores .strata/)`);
      } else {
        await appendFile(path, `${current.endsWith("\n") || current === "" ? "" : "\n"}.strata/\n`);
        report.push(`  updated  ${file.name} (added .strata/)`);
      }
    } else {
      report.push(
        `  kept     ${file.name} (exists; add strata to it with: npm install ${dependency})`,
      );
    }
  }
  const out = ctx.io.stdout;
  const where = relative(ctx.io.cwd, dir);
  writeLine(out, `strata init: a new project in ${dir}`);
  for (const line of report) writeLine(out, line);
  writeLine(out);
  writeLine(out, "next steps:");
  if (where !== "") writeLine(out, `  cd ${where}`);
  writeLine(out, "  npm install");
  writeLine(
    out,
    `  npx strata sim          # a simulated endpoint on ${DEFAULT_SIM_URL}; keep it running`,
  );
  writeLine(out, "  npx strata materialize --select '*'");
  writeLine(out, "  npx strata costs --by model");
  writeLine(out, `see README.strata.md; set ${ENDPOINT_URL_ENV} to use a real endpoint`);
}

/** The directory's name as an npm package name (lowercase, URL-safe). */
function packageName(dir: string): string {
  const name = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[._-]+|-+$/g, "");
  return name === "" ? "strata-project" : name;
}

function scaffoldFiles(name: string, dependency: string): ReadonlyArray<ScaffoldFile> {
  return [
    { name: "strata.config.ts", content: PROJECT_TEMPLATE, ifExists: "refuse" },
    { name: "README.strata.md", content: README_TEMPLATE, ifExists: "refuse" },
    { name: ".gitignore", content: ".strata/\nnode_modules/\n", ifExists: "append-gitignore" },
    {
      name: "package.json",
      content: `${JSON.stringify(
        {
          name,
          private: true,
          type: "module",
          dependencies: { strata: dependency },
        },
        null,
        2,
      )}\n`,
      ifExists: "skip",
    },
  ];
}

const PROJECT_TEMPLATE = `import { asset, defineProject } from "strata";

// A source asset: where your documents come from (a file, a database query, an API).
export const documents = asset({
  key: "raw/documents",
  group: "ingest",
  description: "The documents to analyze",
  codeVersion: "1",
  compute: async () => [
    { id: "d1", text: "The new dashboard is fast, but exporting to CSV fails for large reports." },
    { id: "d2", text: "Quarterly revenue grew 12%, driven by renewals in the enterprise segment." },
    { id: "d3", text: "Please reset my password; the reset email never arrives." },
  ],
});

// An inference asset: one model call per document, each recorded with its tokens and exact cost.
export const analyses = asset({
  key: "analyses",
  group: "nlp",
  description: "A one-sentence analysis of each document",
  codeVersion: "1",
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "small",
      id: (doc) => doc.id,
      messages: (doc) => [
        { role: "system", content: "Summarize the text in one sentence and give its sentiment." },
        { role: "user", content: doc.text },
      ],
      params: { max_tokens: 128, temperature: 0 },
    }),
});

export default defineProject({
  assets: [documents, analyses],
  endpoints: {
    // Any OpenAI-compatible server (vLLM, SGLang, a hosted API). The default is where
    // \`npx strata sim\` listens; the API key comes from OPENAI_API_KEY.
    local: { baseURL: process.env.${ENDPOINT_URL_ENV} || "${DEFAULT_SIM_URL}", maxConcurrency: 16 },
  },
  models: {
    // \`name\` is the model the endpoint serves; prices are USD per million tokens.
    small: {
      endpoint: "local",
      name: "qwen3-8b",
      price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
    },
  },
});
`;

const README_TEMPLATE = `# strata project

This project declares its assets in \`strata.config.ts\`: \`raw/documents\` (the source) and
\`analyses\` (one model call per document). strata materializes them in dependency order and
records every inference call's tokens and exact cost.

\`\`\`sh
npm install                           # strata comes from the checkout package.json points at
npx strata sim                        # a SIMULATED OpenAI-compatible endpoint on ${DEFAULT_SIM_URL}
npx strata materialize --select '*'   # in another terminal: build every asset
npx strata lineage                    # the lineage graph
npx strata costs --by model           # what the run cost
\`\`\`

Run strata as \`npx strata\` inside this project: it runs the strata that \`npm install\` linked
(\`package.json\` depends on it through a \`file:\` path). strata is not on the npm registry,
where the name \`strata\` belongs to an unrelated package, so \`npx strata\` outside a project
that installed it runs something else.

To use a real endpoint, set \`${ENDPOINT_URL_ENV}\` to its base URL (\`https://host/v1\`) and
\`OPENAI_API_KEY\` to its key. Records live in the embedded database in \`.strata/\` (ignored by
git); set \`DATABASE_URL\` to a Postgres URL to share them.
`;
