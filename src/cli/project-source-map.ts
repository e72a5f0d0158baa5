import { readFileSync } from "node:fs";
import { SourceMap } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

// The source maps of compiled project files (see project-cache.ts): written inline, with the
// original files as absolute file URLs, so that Node's stack traces name them; and read back to
// map a stack trace that was formatted without them (a test runner, or a library, that formats
// stack traces itself).

/** The source map, with its sources as absolute file URLs, as a comment to append. */
export function inlineSourceMap(map: string, cacheDir: string): string {
  const parsed = JSON.parse(map) as { sources: string[] };
  parsed.sources = parsed.sources.map((s) => pathToFileURL(resolve(cacheDir, s)).href);
  const data = Buffer.from(JSON.stringify(parsed)).toString("base64");
  return `//# sourceMappingURL=data:application/json;base64,${data}\n`;
}

/** The compiled files imported by this process, for {@link originalStack}. */
const imported = new Set<string>();

/** Notes that `output`, a compiled project file, is being imported. */
export function rememberCompiled(output: string): void {
  imported.add(output);
}

/**
 * `stack` with each position in an imported compiled file (`file:///…/x.mjs:120:7`) replaced by
 * the original file's, through the compiled file's source map.
 *
 * @example
 * originalStack(error.stack); // "… at file:///srv/app/strata.config.ts:3:7"
 */
export function originalStack(stack: string): string {
  let mapped = stack;
  for (const output of imported) {
    const url = pathToFileURL(output).href;
    if (!mapped.includes(url) && !mapped.includes(output)) continue;
    const map = sourceMapOf(output);
    if (map === undefined) continue;
    for (const location of [url, output]) {
      mapped = mapped.replace(
        new RegExp(`${location.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:(\\d+):(\\d+)`, "g"),
        (all, line: string, column: string) => {
          const entry = map.findEntry(Number(line) - 1, Number(column) - 1) as {
            originalSource?: string;
            originalLine?: number;
            originalColumn?: number;
          };
          if (entry.originalSource === undefined || entry.originalLine === undefined) return all;
          const source =
            location === url ? entry.originalSource : fileURLToPath(entry.originalSource);
          return `${source}:${entry.originalLine + 1}:${(entry.originalColumn ?? 0) + 1}`;
        },
      );
    }
  }
  return mapped;
}

function sourceMapOf(output: string): SourceMap | undefined {
  try {
    const match = /\/\/# sourceMappingURL=data:application\/json;base64,(\S+)\s*$/.exec(
      readFileSync(output, "utf8"),
    );
    return match === null
      ? undefined
      : new SourceMap(JSON.parse(Buffer.from(match[1]!, "base64").toString("utf8")));
  } catch {
    return undefined;
  }
}
