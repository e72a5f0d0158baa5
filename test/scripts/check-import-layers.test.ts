import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTempDir } from "../helpers/temp-dir.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SCRIPT = join(REPO_ROOT, "scripts", "check-import-layers.mjs");

function check(root: string) {
  const result = spawnSync(process.execPath, [SCRIPT, root], { encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("scripts/check-import-layers.mjs", () => {
  let temp: { path: string; remove(): Promise<void> };
  const write = (path: string, text: string) => {
    const file = join(temp.path, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
  };

  beforeEach(async () => {
    temp = await createTempDir("strata-layers-");
  });
  afterEach(() => temp.remove());

  it("passes on this repository", () => {
    const result = check(REPO_ROOT);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it("passes imports that flow down the layers", () => {
    write("src/errors.ts", "export class StrataError extends Error {}\n");
    write("src/assets/asset-key.ts", 'import { StrataError } from "../errors.js";\n');
    write(
      "src/lineage/asset-graph.ts",
      'import type { AssetKey } from "../assets/asset-key.js";\n',
    );
    write("src/store/store.ts", 'import pg from "pg";\nimport { readFileSync } from "node:fs";\n');
    write(
      "src/materialize/plan.ts",
      'import { x } from "../lineage/asset-graph.js";\nimport { s } from "../store/store.js";\n',
    );
    write(
      "src/cli/commands/sim.ts",
      'import { a } from "../../sim/simulator.js";\nimport { p } from "../../materialize/plan.js";\n',
    );
    write("src/sim/simulator.ts", 'import { createServer } from "node:http";\n');
    write("src/index.ts", 'export { p } from "./materialize/plan.js";\n');
    write("src/lineage/pure.ts", 'import type { Pool } from "pg";\n');
    const result = check(temp.path);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
  });

  it("lists each import against the layers as file:line and exits 1", () => {
    write("src/errors.ts", "");
    write(
      "src/assets/asset-definition.ts",
      [
        "// import { x } from '../cli/ignored.js' in a comment does not count",
        'import { readFileSync } from "node:fs";',
        "import {",
        "  selectAssets,",
        '} from "../lineage/selection.js";',
        "const text = \"import('../cli/not-an-import.js')\";",
      ].join("\n"),
    );
    write("src/lineage/selection.ts", 'export * from "../index.js";\n');
    write("src/store/store.ts", 'import type { AssetKey } from "../assets/asset-key.js";\n');
    write("src/materialize/run.ts", "export const run = 1;\n");
    write("src/inference/fan-out.ts", 'const plan = await import("../materialize/run.js");\n');
    write("src/values/arrow-file.ts", 'import { callModel } from "../inference/fan-out.js";\n');
    write("src/util/heap.ts", 'import { Store } from "../store/store.js";\n');
    write("src/index.ts", "");
    const result = check(temp.path);
    expect(result.code).toBe(1);
    const lines = result.stderr.split("\n");
    expect(lines).toContain(
      'src/assets/asset-definition.ts:2: assets/ does no I/O but imports "node:fs"; move the I/O to materialize/ or store/',
    );
    expect(
      lines.some((l) =>
        l.startsWith("src/assets/asset-definition.ts:3: assets/ may not import lineage/"),
      ),
    ).toBe(true);
    expect(
      lines.some((l) => l.startsWith("src/lineage/selection.ts:1: imports src/index.ts")),
    ).toBe(true);
    expect(
      lines.some((l) => l.startsWith("src/store/store.ts:1: store/ may not import assets/")),
    ).toBe(true);
    expect(
      lines.some((l) =>
        l.startsWith("src/inference/fan-out.ts:1: inference/ may not import materialize/"),
      ),
    ).toBe(true);
    expect(
      lines.some((l) =>
        l.startsWith("src/values/arrow-file.ts:1: values/ may not import inference/"),
      ),
    ).toBe(true);
    expect(lines.some((l) => l.startsWith("src/util/heap.ts:1: util/ may not import store/"))).toBe(
      true,
    );
    expect(result.stderr).not.toContain("ignored.js");
    expect(result.stderr).not.toContain("not-an-import.js");
  });

  it("reports an import cycle between folders with the imports that make it", () => {
    write("src/assets/a.ts", 'import { b } from "../lineage/b.js";\n');
    write("src/lineage/b.ts", 'import { a } from "../assets/a.js";\n');
    const result = check(temp.path);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("import cycle between folders assets → lineage → assets");
    expect(result.stderr).toContain("lineage → assets at src/lineage/b.ts:1");
  });

  it("rejects a file outside the known layers", () => {
    write("src/helpers/util.ts", "export const x = 1;\n");
    const result = check(temp.path);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("src/helpers/util.ts:1: is in no known layer");
  });
});
