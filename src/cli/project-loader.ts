import { existsSync } from "node:fs";
import { basename, dirname, extname, relative } from "node:path";
import { pathToFileURL } from "node:url";
import type { AssetDefinition } from "../assets/asset-definition.js";
import type { ProjectDefinition } from "../assets/project-definition.js";
import { validateProject } from "../assets/validate-project.js";
import { StrataError } from "../errors.js";
import { AssetGraph } from "../lineage/asset-graph.js";
import { errorMessage } from "../util/error-message.js";
import { importCompiledProject, isRelocationError } from "./project-cache.js";
import { originalStack } from "./project-source-map.js";

/** A project file loaded, validated and turned into its lineage graph. */
export interface LoadedProject {
  /** The absolute path of the project file. */
  readonly file: string;
  readonly dir: string;
  /** `defineProject({ name })`, else the project directory's name. */
  readonly name: string;
  readonly definition: ProjectDefinition;
  readonly graph: AssetGraph;
}

const TS_EXTENSIONS = new Set([".ts", ".mts", ".cts", ".tsx"]);

/** Options of {@link loadProject}. */
export interface LoadProjectOptions {
  /** The environment the project runs in, for `OPENAI_BASE_URL` (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Imports a `strata.config.ts` (compiled by esbuild and cached, see project-cache.ts; else
 * through tsx) or `.js`/`.mjs` file, checks its default export and validates the project (with
 * the environment it runs in, for `OPENAI_BASE_URL`); every failure is a {@link StrataError}
 * with exit code 2.
 *
 * @example
 * const project = await loadProject("/srv/app/strata.config.ts", { env: process.env });
 */
export async function loadProject(
  file: string,
  options: LoadProjectOptions = {},
): Promise<LoadedProject> {
  if (!existsSync(file)) {
    throw new StrataError(
      "project_load",
      `project file "${file}" not found; create one with "strata init" or pass --project FILE`,
    );
  }
  const module = await importProjectFile(file);
  let definition = module.default;
  // A .ts file outside an ESM package is compiled as CommonJS: its exports arrive one level down.
  if (!isProjectDefinition(definition) && definition !== null && typeof definition === "object") {
    const inner = (definition as { default?: unknown }).default;
    if (inner !== undefined || "__esModule" in definition) definition = inner;
  }
  if (definition === undefined) {
    throw new StrataError(
      "bad_project",
      `project file "${file}" has no default export; add "export default defineProject({ assets: [...] })"`,
    );
  }
  if (!isProjectDefinition(definition)) {
    throw new StrataError(
      "bad_project",
      describe(definition) === "a plain object"
        ? `project file "${file}" exports a plain object by default; wrap it in defineProject(): export default defineProject({ assets: [...] })`
        : `project file "${file}" exports ${describe(definition)} by default, not a project; export defineProject({ assets: [...] })`,
    );
  }
  validateProject(definition, { env: options.env ?? process.env });
  const dir = dirname(file);
  return {
    file,
    dir,
    name: definition.name ?? basename(dir),
    definition,
    graph: AssetGraph.fromAssets(definition.assets as ReadonlyArray<AssetDefinition<object>>),
  };
}

let tsxRegistered: Promise<void> | undefined;

/**
 * Registers tsx's loaders once, globally (no namespace), so that a project's own
 * `import { asset } from "strata"` resolves to the very modules the CLI runs: one copy of strata
 * in the process, and errors that keep their class. Both loaders: a `.ts` file outside a
 * `"type": "module"` package is CommonJS.
 */
function registerTsx(): Promise<void> {
  tsxRegistered ??= (async () => {
    const [esm, cjs] = await Promise.all([import("tsx/esm/api"), import("tsx/cjs/api")]);
    esm.register();
    cjs.register();
  })();
  return tsxRegistered;
}

async function importProjectFile(file: string): Promise<{ default?: unknown }> {
  try {
    if (TS_EXTENSIONS.has(extname(file))) {
      try {
        const compiled = await importCompiledProject(file);
        if (compiled !== undefined) return compiled;
      } catch (error) {
        // a package the compiled copy cannot find from where it is kept: tsx finds it, or says so
        if (!isRelocationError(error, file)) throw error;
      }
      await registerTsx();
    }
    return (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (error) {
    const message = errorMessage(error);
    const syntax = /^Transform failed with \d+ errors?:\s*\n?.*?:(\d+):(\d+): ERROR: (.*)$/s.exec(
      message,
    );
    if (syntax !== null) {
      throw new StrataError(
        "project_load",
        `project file "${file}" has a syntax error at line ${syntax[1]}, column ${syntax[2]}: ${syntax[3]!.split("\n")[0]}`,
        { cause: error },
      );
    }
    if (error instanceof StrataError) {
      throw new StrataError(
        error.code,
        `project file "${file}"${lineOf(error, file)}: ${error.message}`,
        { cause: error },
      );
    }
    throw new StrataError(
      "project_load",
      `project file "${file}" failed to load${lineOf(error, file)}: ${message.split("\n")[0]}`,
      { cause: error },
    );
  }
}

/** ` at line N` for the first stack frame in the user's file, or "" when there is none. */
function lineOf(error: unknown, file: string): string {
  // frames in the compiled copy, mapped back (Node does it, unless a test runner or a library
  // formats stack traces itself)
  const stack = originalStack(error instanceof Error ? (error.stack ?? "") : "");
  const url = pathToFileURL(file).href;
  for (const candidate of [url, file, relative(process.cwd(), file)]) {
    const at = stack.indexOf(`${candidate}:`);
    if (at >= 0) {
      const match = /^:(\d+)(?::\d+)?/.exec(stack.slice(at + candidate.length));
      if (match) return ` at line ${match[1]}`;
    }
  }
  // Syntax errors from the TypeScript transform carry the position in the message instead.
  const message = error instanceof Error ? error.message : "";
  const transform = new RegExp(`${escapeRegExp(basename(file))}:(\\d+):\\d+`).exec(message);
  return transform ? ` at line ${transform[1]}` : "";
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function isProjectDefinition(value: unknown): value is ProjectDefinition {
  return (
    value !== null &&
    typeof value === "object" &&
    Array.isArray((value as { assets?: unknown }).assets) &&
    typeof (value as { models?: unknown }).models === "object" &&
    typeof (value as { endpoints?: unknown }).endpoints === "object"
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "function") return "a function";
  if (typeof value === "object") {
    return Array.isArray((value as { assets?: unknown }).assets)
      ? "a plain object"
      : "an object without `assets`";
  }
  return `a ${typeof value}`;
}
