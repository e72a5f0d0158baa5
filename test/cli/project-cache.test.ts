import { existsSync, readdirSync, statSync } from "node:fs";
import { rename, symlink } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  type ProjectFixture,
} from "../helpers/project-fixture.js";

// A TypeScript project file is compiled once (with its local imports) into
// node_modules/.cache/strata and imported from there by later commands. These tests run the
// compiled CLI (`npm run build` first) on projects whose asset keys come from their local files.

const ESM_PACKAGE = { "package.json": JSON.stringify({ type: "module" }) };

/** A project whose one asset's key is what `expression` evaluates to. */
const projectWithKey = (imports: string, expression: string) =>
  `import { asset, defineProject } from "strata";\n${imports}\n` +
  `export default defineProject({ assets: [asset({ key: ${expression}, compute: async () => [] })] });\n`;

async function keys(project: ProjectFixture): Promise<string[]> {
  const result = await project.cli(["lineage", "--format", "json"]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return (JSON.parse(result.stdout) as { assets: Array<{ key: string }> }).assets.map((a) => a.key);
}

function cacheFiles(project: ProjectFixture): string[] {
  const dir = join(project.dir, "node_modules", ".cache", "strata");
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

/** Runs `body` on a new project holding `files`, then removes it. */
async function withProject(
  files: Record<string, string>,
  body: (p: ProjectFixture) => Promise<void>,
): Promise<void> {
  const p = await createProjectFixture(files);
  try {
    await body(p);
  } finally {
    await p.remove();
  }
}

describe.concurrent("the compiled project cache", CLI_TEST_OPTIONS, () => {
  it("compiles the project file once; the next command imports the compiled copy", async () => {
    await withProject(
      {
        ...ESM_PACKAGE,
        "strata.config.ts": projectWithKey('import { key } from "./lib/key.js";', "key"),
        "lib/key.ts": 'export const key: string = "documents";\n',
      },
      async (p) => {
        expect(await keys(p)).toEqual(["documents"]);
        const files = cacheFiles(p);
        expect(files.filter((f) => f.endsWith(".mjs"))).toHaveLength(1);
        const compiled = join(
          p.dir,
          "node_modules",
          ".cache",
          "strata",
          files.find((f) => f.endsWith(".mjs"))!,
        );
        const written = statSync(compiled).mtimeMs;
        expect(await keys(p)).toEqual(["documents"]);
        expect(cacheFiles(p)).toEqual(files);
        expect(statSync(compiled).mtimeMs).toBe(written);
      },
    );
  });

  it("recompiles when a local import changes, and drops the old copy", async () => {
    await withProject(
      {
        ...ESM_PACKAGE,
        "strata.config.ts": projectWithKey('import { key } from "./lib/key.js";', "key"),
        "lib/key.ts": 'export const key: string = "first";\n',
      },
      async (p) => {
        expect(await keys(p)).toEqual(["first"]);
        await p.write({ "lib/key.ts": 'export const key: string = "second";\n' });
        expect(await keys(p)).toEqual(["second"]);
        expect(cacheFiles(p).filter((f) => f.endsWith(".mjs"))).toHaveLength(1);
      },
    );
  });

  it("compiles several projects at once in one process, each to its own copy", async () => {
    // the CLI runs in this process: both builds share esbuild's service, which must outlive them
    const files = (key: string) => ({
      ...ESM_PACKAGE,
      "strata.config.ts": projectWithKey('import { key } from "./lib/key.js";', "key"),
      "lib/key.ts": `export const key: string = ${JSON.stringify(key)};\n`,
    });
    await withProject(files("left"), (left) =>
      withProject(files("right"), async (right) => {
        expect(await Promise.all([keys(left), keys(right), keys(left)])).toEqual([
          ["left"],
          ["right"],
          ["left"],
        ]);
      }),
    );
  });

  it("gives each bundled file its own import.meta.url, dirname and filename", async () => {
    const reader = (name: string) =>
      `import { readFileSync } from "node:fs";\nimport { basename, join } from "node:path";\n` +
      `export const ${name} = [readFileSync(new URL("./key.txt", import.meta.url), "utf8").trim(), ` +
      `readFileSync(join(import.meta.dirname, "key.txt"), "utf8").trim(), basename(import.meta.filename, ".ts")];\n`;
    await withProject(
      {
        ...ESM_PACKAGE,
        "strata.config.ts": projectWithKey(
          'import { a } from "./lib/a/read.js";\nimport { b } from "./lib/b/read.js";',
          '[...a, ...b, import.meta.url.split("/").pop()!.replace(".config.ts", "")].join("-")',
        ),
        "lib/a/read.ts": reader("a"),
        "lib/a/key.txt": "alpha\n",
        "lib/b/read.ts": reader("b"),
        "lib/b/key.txt": "beta\n",
      },
      async (p) => {
        expect(await keys(p)).toEqual(["alpha-alpha-read-beta-beta-read-strata"]);
        expect(cacheFiles(p).some((f) => f.endsWith(".mjs"))).toBe(true);
      },
    );
  });

  it("gives each file of a CommonJS package its own __dirname and __filename", async () => {
    // no "type": "module": a .ts file here is CommonJS, as tsx and Node treat it
    await withProject(
      {
        "strata.config.ts": projectWithKey(
          'import { key } from "./lib/key";\nimport { basename } from "node:path";',
          '[key, basename(__filename, ".config.ts")].join("-")',
        ),
        "lib/key.ts":
          'import { readFileSync } from "node:fs";\nimport { join } from "node:path";\n' +
          'export const key = readFileSync(join(__dirname, "key.txt"), "utf8").trim();\n',
        "lib/key.txt": "gamma\n",
      },
      async (p) => {
        expect(await keys(p)).toEqual(["gamma-strata"]);
        expect(cacheFiles(p).some((f) => f.endsWith(".mjs"))).toBe(true);
      },
    );
  });

  it("loads the project through tsx when node_modules is a link, and writes no cache there", async () => {
    await withProject(
      {
        ...ESM_PACKAGE,
        "strata.config.ts": projectWithKey('import { key } from "./lib/key.js";', "key"),
        "lib/key.ts": 'export const key: string = "linked";\n',
      },
      async (p) => {
        const real = join(p.dir, "packages");
        await rename(join(p.dir, "node_modules"), real);
        await symlink(real, join(p.dir, "node_modules"), "dir");
        expect(await keys(p)).toEqual(["linked"]);
        expect(existsSync(join(real, ".cache"))).toBe(false);
      },
    );
  });
});
