import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { LineageJson } from "../../src/lineage/lineage-json.js";
import type { OpenLineageRunEvent } from "../../src/lineage/openlineage.js";
import { openLineageValidator } from "../helpers/openlineage-spec.js";
import {
  CLI_TEST_OPTIONS,
  catalogProject,
  createProjectFixture,
  designExampleProject,
  diamondProject,
  type ProjectFixture,
  REPO_ROOT,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly), each in its own project directory. `lineage` exports the declared
// graph and opens no database.

/** The part of `lineage --format json` that DESIGN.md fixes. */
function contractOf(json: LineageJson) {
  return {
    assets: json.assets.map(({ key, group, deps }) => ({ key, group, deps })),
    edges: json.edges.map(({ from, to }) => ({ from, to })),
  };
}

function ok(result: CliResult): string {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return result.stdout;
}

const DIAMOND_KEYS = ["analyses", "raw/documents", "report", "summaries"];
const DIAMOND_EDGES = [
  { from: "raw/documents", to: "analyses" },
  { from: "analyses", to: "report" },
  { from: "summaries", to: "report" },
  { from: "raw/documents", to: "summaries" },
];

describe.concurrent("strata lineage", CLI_TEST_OPTIONS, () => {
  it("prints the DESIGN.md example as { assets: [{ key, group, deps }], edges: [{ from, to }] }", async () => {
    const project = await createProjectFixture(designExampleProject({ name: "docs" }));
    try {
      const json = JSON.parse(ok(await project.cli(["lineage", "--format", "json"])));
      expect(Object.keys(json).sort()).toEqual(["assets", "edges"]);
      expect(contractOf(json)).toEqual({
        assets: [
          { key: "analyses", group: "default", deps: ["raw/documents"] },
          { key: "raw/documents", group: "ingest", deps: [] },
        ],
        edges: [{ from: "raw/documents", to: "analyses" }],
      });
      // a pure export of the declared graph: no database was created
      expect(existsSync(join(project.dir, ".strata"))).toBe(false);
      // the definition's metadata comes along
      expect(json.assets[1]).toMatchObject({
        description: "Source documents",
        tags: { team: "nlp" },
        owners: ["team:nlp"],
        kinds: ["arrow"],
        codeVersion: "1",
        partitions: "static [en, de]",
      });
    } finally {
      await project.remove();
    }
  });

  it("type-checks the DESIGN.md example against the published types", async () => {
    const project = await createProjectFixture({
      "strata.config.ts": designExampleProject(),
      "tsconfig.json": JSON.stringify({
        compilerOptions: {
          strict: true,
          module: "NodeNext",
          moduleResolution: "NodeNext",
          target: "ES2022",
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ["strata.config.ts"],
      }),
    });
    try {
      const tsc = join(REPO_ROOT, "node_modules", "typescript", "bin", "tsc");
      const run = promisify(execFile)(process.execPath, [tsc, "-p", project.dir]);
      await expect(run).resolves.toMatchObject({ stdout: "" });
    } finally {
      await project.remove();
    }
  });

  it("prints OpenLineage events that validate against the spec, in the namespace strata://<project name>", async () => {
    const project = await createProjectFixture(designExampleProject({ name: "docs" }));
    try {
      const events = JSON.parse(
        ok(await project.cli(["lineage", "--format", "openlineage"])),
      ) as OpenLineageRunEvent[];
      const validate = openLineageValidator();
      expect(events.map((e) => validate(e))).toEqual([[], []]);
      // one event per asset, deps first; jobs and datasets share the project's namespace
      expect(events.map((e) => e.job.name)).toEqual(["raw/documents", "analyses"]);
      for (const event of events) {
        expect(event.job.namespace).toBe("strata://docs");
        expect(event.outputs).toEqual([expect.objectContaining({ namespace: "strata://docs" })]);
        expect(event.outputs[0]?.name).toBe(event.job.name);
      }
      expect(events[1]?.inputs).toEqual([{ namespace: "strata://docs", name: "raw/documents" }]);
      expect(events[0]?.inputs).toEqual([]);
    } finally {
      await project.remove();
    }
  });

  it("names the OpenLineage namespace after the project directory when the project has no name", async () => {
    const project = await createProjectFixture(diamondProject());
    try {
      const events = JSON.parse(
        ok(await project.cli(["lineage", "--format", "openlineage", "--select", "report"])),
      ) as OpenLineageRunEvent[];
      const namespace = `strata://${project.dir.split("/").pop()}`;
      expect(events).toHaveLength(1);
      expect(openLineageValidator()(events[0]!)).toEqual([]);
      expect(events[0]?.job).toMatchObject({ namespace, name: "report" });
      // deps outside the selection are still the job's inputs
      expect(events[0]?.inputs.map((d) => d.name)).toEqual(["analyses", "summaries"]);
    } finally {
      await project.remove();
    }
  });

  describe("with the tree, dot and mermaid formats", () => {
    let project: ProjectFixture;
    beforeEach(async () => {
      project = await createProjectFixture(diamondProject());
    });
    afterEach(() => project.remove());

    it("prints every asset and edge", async () => {
      const tree = ok(await project.cli(["lineage"]));
      expect(tree.trimEnd().split("\n")).toEqual([
        "raw/documents [default]",
        "├── analyses [default]",
        "│   └── report [default]",
        "└── summaries [default]",
        "    └── report [default] (see above)",
      ]);

      const dot = ok(await project.cli(["lineage", "--format", "dot"]));
      expect(dot).toMatch(/^digraph /);
      for (const key of DIAMOND_KEYS) expect(dot).toContain(`"${key}"`);
      for (const { from, to } of DIAMOND_EDGES) expect(dot).toContain(`"${from}" -> "${to}"`);

      const mermaid = ok(await project.cli(["lineage", "--format", "mermaid", "--select", "*"]));
      expect(mermaid).toMatch(/^flowchart /);
      for (const key of DIAMOND_KEYS) expect(mermaid).toContain(`"${key}"`);
      expect(mermaid.match(/-->/g)).toHaveLength(DIAMOND_EDGES.length);
    });
  });

  it("restricts the graph to the --select selection, keeping deps but only edges inside it", async () => {
    const project = await createProjectFixture(catalogProject());
    try {
      const json = JSON.parse(
        ok(await project.cli(["lineage", "--format", "json", "--select", "group:llm"])),
      );
      expect(contractOf(json)).toEqual({
        assets: [
          { key: "analyses", group: "llm", deps: ["raw/documents"] },
          { key: "summaries", group: "llm", deps: ["analyses"] },
        ],
        edges: [{ from: "analyses", to: "summaries" }],
      });
    } finally {
      await project.remove();
    }
  });

  it.each([
    {
      flag: "--upstream",
      assets: ["analyses", "raw/documents"],
      edges: [{ from: "raw/documents", to: "analyses" }],
    },
    {
      flag: "--downstream",
      assets: ["analyses", "report"],
      edges: [{ from: "analyses", to: "report" }],
    },
  ])("prints KEY and its lineage with $flag", async ({ flag, assets, edges }) => {
    const project = await createProjectFixture(diamondProject());
    try {
      const json = JSON.parse(
        ok(await project.cli(["lineage", "analyses", flag, "--format", "json"])),
      );
      expect(json.assets.map((a: { key: string }) => a.key)).toEqual(assets);
      expect(json.edges).toEqual(edges);
    } finally {
      await project.remove();
    }
  });

  it("exits 2 on an unknown key and suggests the closest one", async () => {
    const project = await createProjectFixture(diamondProject());
    try {
      const result = await project.cli(["lineage", "analyse", "--upstream"]);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe(
        'strata: no asset has the key "analyse"; did you mean "analyses"?\n',
      );
      expect(result.code).toBe(2);
    } finally {
      await project.remove();
    }
  });
});
