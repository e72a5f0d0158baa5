import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  DEFAULT_PROJECT_FILE,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly). A bad project is refused before the database is opened, so each
// case costs one short process and leaves no `.strata` directory behind.

const ESM_PACKAGE = { "package.json": JSON.stringify({ type: "module" }) };

/** A project file importing strata whose body is `body`. */
const projectFile = (body: string) =>
  `import { asset, dailyPartitions, defineProject, staticPartitions } from "strata";\n` +
  `const rows = async () => [{ id: "1" }];\n${body}\n`;

interface BadProject {
  /** What the case is, as the test's name reads: "refuses a project with ...". */
  readonly name: string;
  readonly files: Readonly<Record<string, string>>;
  readonly args?: ReadonlyArray<string>;
  readonly env?: NodeJS.ProcessEnv;
  /** Texts the message must contain, given the fixture (for paths). */
  readonly says: (project: ProjectFixture) => ReadonlyArray<string>;
  /** Lines stderr must have: 1 for one problem, 1 + N for N problems listed. */
  readonly lines?: number;
}

const BAD_PROJECTS: ReadonlyArray<BadProject> = [
  {
    name: "a duplicate key",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const a = asset({ key: "analyses", compute: rows });
const b = asset({ key: "analyses", compute: rows });
export default defineProject({ assets: [a, b] });`),
    },
    says: () => ['asset key "analyses" is defined 2 times', "unique key"],
  },
  {
    name: "a key with invalid syntax",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const a = asset({ key: "raw documents", compute: rows });
export default defineProject({ assets: [a] });`),
    },
    says: () => ['asset key "raw documents" is invalid', "[A-Za-z0-9_-]"],
  },
  {
    name: "an unknown dep, suggesting the closest key",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const documents = asset({ key: "raw/documents", compute: rows });
const analyses = asset({ key: "analyses", deps: { docs: "raw/docs" }, compute: rows });
export default defineProject({ assets: [documents, analyses] });`),
    },
    says: () => [
      'asset "analyses" depends on unknown asset "raw/docs"; did you mean "raw/documents"?',
    ],
  },
  {
    name: "a cycle, naming its path",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const a = asset({ key: "a", deps: { b: "b" }, compute: rows });
const b = asset({ key: "b", deps: { c: "c" }, compute: rows });
const c = asset({ key: "c", deps: { a }, compute: rows });
export default defineProject({ assets: [a, b, c] });`),
    },
    says: () => ["cycle", "a → b → c → a"],
  },
  {
    name: "a model whose endpoint is unknown",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const a = asset({ key: "a", compute: rows });
export default defineProject({
  assets: [a],
  endpoints: { local: { baseURL: "http://127.0.0.1:8000/v1" } },
  models: { small: { endpoint: "gpu", name: "qwen3-8b" } },
});`),
    },
    says: () => ['model "small" uses unknown endpoint "gpu"', '"local"'],
  },
  {
    name: "a partitioned asset depending on differently partitioned one, naming both",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const documents = asset({ key: "raw/documents", partitions: staticPartitions(["en", "de"]), compute: rows });
const daily = asset({
  key: "daily",
  partitions: dailyPartitions({ start: "2026-01-01" }),
  deps: { documents },
  compute: rows,
});
export default defineProject({ assets: [documents, daily] });`),
    },
    says: () => [
      'asset "daily" (daily from 2026-01-01) depends on asset "raw/documents" (static [en, de])',
      "different partitions",
    ],
  },
  {
    name: "several problems, listing them all",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`
const documents = asset({ key: "raw/documents", compute: rows });
const bad = asset({ key: "raw documents", compute: rows });
const analyses = asset({ key: "analyses", deps: { docs: "raw/docs" }, compute: rows });
const again = asset({ key: "analyses", compute: rows });
export default defineProject({
  assets: [documents, bad, analyses, again],
  models: { small: { endpoint: "gpu", name: "qwen3-8b" } },
});`),
    },
    says: () => [
      "4 problems in the project",
      'asset key "raw documents" is invalid',
      'asset key "analyses" is defined 2 times',
      'unknown asset "raw/docs"; did you mean "raw/documents"?',
      'model "small" uses unknown endpoint "gpu"',
    ],
    lines: 5,
  },
  {
    name: "a project file that throws while loading, naming the file and the line",
    files: {
      ...ESM_PACKAGE,
      [DEFAULT_PROJECT_FILE]: `import { defineProject } from "strata";\n\nthrow new Error("no documents found");\nexport default defineProject({ assets: [] });\n`,
    },
    says: (p) => [`"${p.file}"`, "at line 3", "no documents found"],
  },
  {
    // A .ts file outside a `"type": "module"` package loads as CommonJS, the common case.
    name: "a CommonJS project file that throws while loading, naming the file and the line",
    files: {
      [DEFAULT_PROJECT_FILE]: `import { defineProject } from "strata";\n\nthrow new Error("no documents found");\nexport default defineProject({ assets: [] });\n`,
    },
    says: (p) => [`"${p.file}"`, "at line 3", "no documents found"],
  },
  {
    name: "an asset() call that throws while loading, naming the asset and the line",
    files: {
      ...ESM_PACKAGE,
      [DEFAULT_PROJECT_FILE]: `import { asset, defineProject } from "strata";\n\nconst a = asset({ key: "a" } as never);\nexport default defineProject({ assets: [a] });\n`,
    },
    says: (p) => [`"${p.file}"`, "at line 3", 'asset "a" has no compute function'],
  },
  {
    name: "a syntax error, naming the file and the line",
    files: {
      [DEFAULT_PROJECT_FILE]: `import { asset, defineProject } from "strata";\nconst a = asset({ key: "a", compute: () => [] ;\nexport default defineProject({ assets: [a] });\n`,
    },
    says: (p) => [`"${p.file}"`, "at line 2", 'Expected "}" but found ";"'],
  },
  {
    name: "no default export",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`export const a = asset({ key: "a", compute: rows });`),
    },
    says: (p) => [`"${p.file}" has no default export`, "export default defineProject"],
  },
  {
    name: "a number as its default export",
    files: { [DEFAULT_PROJECT_FILE]: "export default 42;\n" },
    says: (p) => [`"${p.file}" exports a number by default, not a project`, "defineProject"],
  },
  {
    name: "an array as its default export",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(`export default [asset({ key: "a", compute: rows })];`),
    },
    says: (p) => [`"${p.file}" exports an array by default, not a project`, "defineProject"],
  },
  {
    name: "a plain object as its default export, without defineProject",
    files: {
      [DEFAULT_PROJECT_FILE]: projectFile(
        `export default { assets: [asset({ key: "a", compute: rows })] };`,
      ),
    },
    // The object has `assets`: the message must not claim it lacks them.
    says: (p) => [`"${p.file}" exports`, "a plain object", "wrap it in defineProject()"],
  },
  {
    name: "a --project file that does not exist",
    files: {},
    args: ["--project", "missing.ts"],
    says: (p) => [`project file "${join(p.dir, "missing.ts")}" not found`, "--project"],
  },
  {
    name: "no strata.config.ts and no --project",
    files: {},
    says: (p) => [`project file "${p.file}" not found`],
  },
  {
    name: "a bad project named by STRATA_PROJECT",
    files: {
      "pipelines/docs.ts": projectFile(`
const a = asset({ key: "a", deps: { a: "a" }, compute: rows });
export default defineProject({ assets: [a] });`),
    },
    env: { STRATA_PROJECT: "pipelines/docs.ts" },
    says: () => ['asset "a" depends on itself (a → a)'],
  },
  {
    name: "a bad --project file, which wins over STRATA_PROJECT",
    files: {
      "other.ts": "export default 42;\n",
      "pipelines/docs.ts": projectFile(`
const a = asset({ key: "a", deps: { a: "a" }, compute: rows });
export default defineProject({ assets: [a] });`),
    },
    args: ["--project", "other.ts"],
    env: { STRATA_PROJECT: "pipelines/docs.ts" },
    says: (p) => [`"${join(p.dir, "other.ts")}" exports a number by default`],
  },
];

function stderrLines(result: CliResult): string[] {
  return result.stderr.split("\n").filter((line) => line !== "");
}

describe.concurrent("strata with a bad project", CLI_TEST_OPTIONS, () => {
  it.each(BAD_PROJECTS)("refuses $name with exit code 2 and a clear message", async (bad) => {
    const project = await createProjectFixture(bad.files);
    try {
      const result = await project.cli([...(bad.args ?? []), "list", "--json"], bad.env);
      expect(result.stdout).toBe("");
      const lines = stderrLines(result);
      expect(lines, result.stderr).toHaveLength(bad.lines ?? 1);
      expect(lines[0]).toMatch(/^strata: /);
      for (const text of bad.says(project)) expect(result.stderr).toContain(text);
      expect(result.stderr).not.toContain("without `assets`");
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.code).toBe(2);
      // refused before the embedded database was opened: nothing created, nothing recorded
      expect(existsSync(join(project.dir, ".strata"))).toBe(false);
    } finally {
      await project.remove();
    }
  });

  it("prints the stack trace of the error with --verbose", async () => {
    const project = await createProjectFixture(
      projectFile(`
const analyses = asset({ key: "analyses", deps: { reports: "reports" }, compute: rows });
export default defineProject({ assets: [analyses] });`),
    );
    try {
      const result = await project.cli(["--verbose", "lineage"]);
      expect(result.code).toBe(2);
      expect(stderrLines(result)[0]).toBe(
        'strata: asset "analyses" depends on unknown asset "reports"; add an asset with that key to the project or fix the dep "reports"',
      );
      expect(result.stderr).toMatch(/^\s+at /m);
    } finally {
      await project.remove();
    }
  });
});
