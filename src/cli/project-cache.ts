import { createHash, randomBytes } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { inlineSourceMap, rememberCompiled } from "./project-source-map.js";

// A TypeScript project file, compiled once and kept: each `strata` command imports the compiled
// module instead of registering tsx's loaders (whose hooks thread every later import of the
// process goes through). esbuild (tsx's own compiler) bundles the project file with its local
// imports into one ES module, packages left as imports, under the nearest node_modules/.cache/
// strata/, where Node resolves those packages as it would from the project. The key is the
// content of every bundled file, the nearest package.json and tsconfig.json, and esbuild's
// version. Each bundled file keeps its own import.meta.url (and, in a CommonJS package,
// __dirname and __filename); errors point at the original files through the source map.

/** Bumped when the output of {@link compileProject} changes for the same inputs. */
const CACHE_FORMAT = 1;

/** The parts of esbuild's API used here (esbuild comes with tsx). */
interface Esbuild {
  readonly version: string;
  build(options: Record<string, unknown>): Promise<{
    outputFiles: ReadonlyArray<{ path: string; text: string }>;
    metafile: { inputs: Record<string, unknown> };
  }>;
  stop?(): void;
}

/** What is recorded beside a compiled project file: the inputs it was compiled from. */
interface CacheManifest {
  readonly key: string;
  readonly esbuild: string;
  readonly output: string;
  readonly inputs: ReadonlyArray<string>;
}

/**
 * Imports the TypeScript project file `file` through its compiled copy, compiling it when the
 * copy is missing or out of date. Resolves undefined when the cache cannot be used here (no
 * node_modules folder to keep it in, a folder that cannot be written, no esbuild, or a file
 * esbuild cannot compile): the caller then loads the file through tsx, whose errors name the
 * problem.
 *
 * @example
 * const module = (await importCompiledProject("/srv/app/strata.config.ts")) ?? (await viaTsx());
 */
export async function importCompiledProject(
  file: string,
): Promise<{ default?: unknown } | undefined> {
  const cacheDir = cacheDirFor(dirname(file));
  if (cacheDir === undefined) return undefined;
  const entry = realpathSync(file);
  const manifestFile = join(cacheDir, `${hash(entry).slice(0, 16)}.json`);
  const output = upToDateOutput(manifestFile) ?? (await compileProject(entry, manifestFile));
  if (output === undefined) return undefined;
  // as tsx does: stack traces name the original files and lines
  process.setSourceMapsEnabled(true);
  rememberCompiled(output);
  return (await import(pathToFileURL(output).href)) as { default?: unknown };
}

/** Whether `error`, thrown importing a compiled project, means "load it through tsx instead". */
export function isRelocationError(error: unknown, file: string): boolean {
  const cacheDir = cacheDirFor(dirname(file));
  const message = error instanceof Error ? error.message : "";
  return (
    cacheDir !== undefined &&
    message.includes(cacheDir) &&
    (error as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND"
  );
}

/** `<nearest node_modules>/.cache/strata`, or undefined when there is no usable node_modules. */
function cacheDirFor(dir: string): string | undefined {
  for (let at = resolve(dir); ; at = dirname(at)) {
    const modules = join(at, "node_modules");
    try {
      const stat = lstatSync(modules);
      // a linked node_modules moves the compiled file away from the project's packages
      return stat.isDirectory()
        ? join(realpathSync(at), "node_modules", ".cache", "strata")
        : undefined;
    } catch {
      // none here: look further up
    }
    if (dirname(at) === at) return undefined;
  }
}

/** The compiled file named by `manifestFile`, when every input still has the recorded content. */
function upToDateOutput(manifestFile: string): string | undefined {
  let manifest: CacheManifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as CacheManifest;
  } catch {
    return undefined;
  }
  const output = join(dirname(manifestFile), manifest.output);
  if (!existsSync(output)) return undefined;
  const esbuild = esbuildVersion();
  if (esbuild !== manifest.esbuild) return undefined;
  return keyOf(manifest.inputs, esbuild) === manifest.key ? output : undefined;
}

/**
 * Builds of this process in flight. esbuild's service is one child process for all of them, and
 * stopping it abandons every pending build: the last build to finish stops it.
 */
let compiling = 0;

/** Bundles `entry` with esbuild, writes it and its manifest; undefined when that fails. */
async function compileProject(entry: string, manifestFile: string): Promise<string | undefined> {
  const esbuild = await loadEsbuild();
  if (esbuild === undefined) return undefined;
  const cacheDir = dirname(manifestFile);
  const commonJs = isCommonJs(entry);
  let result: Awaited<ReturnType<Esbuild["build"]>>;
  compiling++;
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      absWorkingDir: dirname(entry),
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: `node${process.versions.node}`,
      outfile: join(cacheDir, "project.mjs"),
      write: false,
      metafile: true,
      sourcemap: "external",
      sourcesContent: false,
      logLevel: "silent",
      define: {
        "import.meta.url": "__strataImportMetaUrl",
        "import.meta.dirname": "__strataImportMetaDirname",
        "import.meta.filename": "__strataImportMetaFilename",
      },
      banner: commonJs
        ? {
            js: 'import { createRequire as __strataCreateRequire } from "node:module"; const require = __strataCreateRequire(import.meta.url);',
          }
        : {},
      plugins: [ownLocation()],
    });
  } catch {
    return undefined; // tsx loads it and reports the problem
  } finally {
    if (--compiling === 0) esbuild.stop?.();
  }
  const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(dirname(entry), p));
  inputs.push(...configFiles(dirname(entry)));
  const key = keyOf(inputs, esbuild.version);
  const code = result.outputFiles
    .find((f) => f.path.endsWith(".mjs"))
    ?.text.replace(/\/\/# sourceMappingURL=\S+\s*$/, "");
  const map = result.outputFiles.find((f) => f.path.endsWith(".map"))?.text;
  if (key === undefined || code === undefined || map === undefined) return undefined;
  const output = `${basename(manifestFile, ".json")}-${key.slice(0, 16)}.mjs`;
  try {
    mkdirSync(cacheDir, { recursive: true });
    writeAtomically(join(cacheDir, output), `${code}${inlineSourceMap(map, cacheDir)}`);
    const previous = previousOutput(manifestFile);
    const manifest: CacheManifest = { key, esbuild: esbuild.version, output, inputs };
    writeAtomically(manifestFile, `${JSON.stringify(manifest)}\n`);
    if (previous !== undefined && previous !== output)
      rmSync(join(cacheDir, previous), { force: true });
  } catch {
    return undefined; // a read-only node_modules: no cache
  }
  return join(cacheDir, output);
}

/**
 * An esbuild plugin giving each bundled file of the project its own `import.meta.url`,
 * `import.meta.dirname` and `import.meta.filename` (and in a CommonJS package `__dirname` and
 * `__filename`), as it has when Node loads it: the bundle lives elsewhere. The constants go on the
 * file's first line, so line numbers do not move.
 */
function ownLocation() {
  return {
    name: "strata-own-location",
    setup(build: {
      onLoad(
        options: { filter: RegExp },
        callback: (args: { path: string }) => { contents: string; loader: string },
      ): void;
    }) {
      build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, ({ path }) => {
        const source = readFileSync(path, "utf8");
        const url = JSON.stringify(pathToFileURL(path).href);
        const names = [
          `__strataImportMetaUrl = ${url}`,
          `__strataImportMetaDirname = ${JSON.stringify(dirname(path))}`,
          `__strataImportMetaFilename = ${JSON.stringify(path)}`,
        ];
        if (isCommonJs(path)) {
          names.push(
            `__filename = ${JSON.stringify(path)}`,
            `__dirname = ${JSON.stringify(dirname(path))}`,
          );
        }
        const hashbang = /^#![^\n]*\n/.exec(source)?.[0] ?? "";
        const contents = `${hashbang}const ${names.join(", ")}; ${source.slice(hashbang.length)}`;
        return { contents, loader: loaderOf(path) };
      });
    },
  };
}

function loaderOf(path: string): string {
  const ext = extname(path);
  if (ext === ".tsx" || ext === ".jsx") return ext.slice(1);
  return ext.endsWith("ts") ? "ts" : "js";
}

/** Whether Node loads `file` as CommonJS: `.cts`/`.cjs`, or its package is not `"type": "module"`. */
function isCommonJs(file: string): boolean {
  const ext = extname(file);
  if (ext === ".cts" || ext === ".cjs") return true;
  if (ext === ".mts" || ext === ".mjs") return false;
  const packageJson = nearest(dirname(file), "package.json");
  if (packageJson === undefined) return true;
  try {
    return (JSON.parse(readFileSync(packageJson, "utf8")) as { type?: unknown }).type !== "module";
  } catch {
    return true;
  }
}

/** The package.json and tsconfig.json that govern how the project compiles. */
function configFiles(dir: string): string[] {
  return ["package.json", "tsconfig.json"]
    .map((name) => nearest(dir, name))
    .filter((p): p is string => p !== undefined);
}

function nearest(dir: string, name: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, name))) return join(at, name);
    if (dirname(at) === at) return undefined;
  }
}

/** The cache key of `inputs`: their paths and contents, esbuild's and Node's versions. */
function keyOf(inputs: ReadonlyArray<string>, esbuild: string | undefined): string | undefined {
  const key = createHash("sha256").update(
    `${CACHE_FORMAT}\n${esbuild ?? esbuildVersion()}\n${process.versions.node}\n`,
  );
  for (const input of inputs) {
    let content: Buffer;
    try {
      content = readFileSync(input);
    } catch {
      return undefined; // deleted since
    }
    key.update(`${input}\n${hash(content)}\n`);
  }
  return key.digest("hex");
}

function hash(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** esbuild as tsx resolves it (npm installs it beside tsx, or inside tsx's own folder). */
function esbuildRequire(): NodeJS.Require | undefined {
  try {
    const require = createRequire(import.meta.url);
    return createRequire(require.resolve("tsx/package.json"));
  } catch {
    return undefined;
  }
}

function esbuildVersion(): string | undefined {
  try {
    const path = esbuildRequire()?.resolve("esbuild/package.json");
    return path === undefined
      ? undefined
      : (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
  } catch {
    return undefined;
  }
}

async function loadEsbuild(): Promise<Esbuild | undefined> {
  try {
    const main = esbuildRequire()?.resolve("esbuild");
    if (main === undefined) return undefined;
    const module = (await import(pathToFileURL(main).href)) as Esbuild & { default?: Esbuild };
    return module.default ?? module;
  } catch {
    return undefined;
  }
}

/** The previous compiled file of the manifest about to be replaced. */
function previousOutput(manifestFile: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(manifestFile, "utf8")) as CacheManifest).output;
  } catch {
    return undefined;
  }
}

/** Writes beside `path` and renames into place: a concurrent reader sees all of it or nothing. */
function writeAtomically(path: string, content: string): void {
  const aside = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  try {
    writeFileSync(aside, content);
    renameSync(aside, path);
  } finally {
    rmSync(aside, { force: true });
  }
}
