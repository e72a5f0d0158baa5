import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { readArrowFile } from "../../src/values/arrow-file.js";
import {
  type BackendProject,
  createBackendProject,
  withBackendProject,
  withStore,
} from "../helpers/backend-project.js";
import { CLI_TEST_OPTIONS } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { BACKENDS } from "../helpers/test-store.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly), each in its own project directory with its own database, and read
// what a run left behind (rows, Arrow files) after the process exited, as a user would.

/** What `raw` returns: the column types a pipeline meets (text, numbers, flags, nulls, JSON). */
const RAW_ROWS = [
  { id: "d1", text: "alpha", score: 0.5, pages: 3, ok: true, note: null, meta: { lang: "en" } },
  { id: "d2", text: "beta", score: 1.25, pages: 7, ok: false, note: "draft", meta: { lang: "de" } },
  { id: "d3", text: "gamma", score: 2, pages: 1, ok: true, note: null, meta: { lang: "en" } },
];

/** `raw` → `clean` → `reports/daily`: each step computes from the rows its dep handed over. */
function pipelineProject(): string {
  return `import { asset, defineProject } from "strata";

export const raw = asset({
  key: "raw",
  codeVersion: "1",
  compute: async () => ${JSON.stringify(RAW_ROWS)},
});
export const clean = asset({
  key: "clean",
  deps: { raw },
  compute: async (_ctx, { raw }) =>
    raw.filter((r) => r.ok).map((r) => ({ id: r.id, text: r.text.toUpperCase(), pages: r.pages })),
});
export const report = asset({
  key: "reports/daily",
  deps: { clean },
  compute: async (_ctx, { clean }) => [
    { documents: clean.length, pages: clean.reduce((n, r) => n + r.pages, 0) },
  ],
});

export default defineProject({ assets: [raw, clean, report] });
`;
}

const CLEAN_ROWS = [
  { id: "d1", text: "ALPHA", pages: 3 },
  { id: "d3", text: "GAMMA", pages: 1 },
];
const REPORT_ROWS = [{ documents: 2, pages: 4 }];

/** A step of `materialize --json`, with exactly the fields DESIGN.md promises (more are welcome). */
function builtStep(key: string, rows: number, partition: string | null = null) {
  return {
    key,
    partition,
    status: "succeeded",
    rows,
    promptTokens: 0,
    cachedTokens: 0,
    completionTokens: 0,
    costUsd: "0",
  };
}

interface MaterializeJson {
  runId: string;
  status: string;
  costUsd: string;
  assets: Array<{ key: string; partition: string | null; status: string; rows: number | null }>;
}

/** Parses the whole of stdout: `--json` prints the result and nothing else there. */
function materializeJson(result: CliResult): MaterializeJson {
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as MaterializeJson;
}

/** A usage error: exit 2, one `strata: ...` line on stderr and no stack trace, nothing on stdout. */
function usageError(result: CliResult): string {
  expect(result.stdout).toBe("");
  const lines = result.stderr.split("\n").filter((l) => l.trim() !== "");
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^strata: /);
  expect(result.code).toBe(2);
  return lines[0]!;
}

async function storedRows(path: string): Promise<unknown[]> {
  return tableToRows(await readArrowFile(path));
}

/** The `.arrow` files of one asset partition directory (`__all__` when unpartitioned). */
async function arrowFiles(project: BackendProject, ...dirs: string[]): Promise<string[]> {
  const dir = join(project.project.dir, ".strata", "storage", ...dirs);
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).filter((f) => f.endsWith(".arrow")).sort();
}

describe.concurrent.each(BACKENDS)("strata materialize on %s", CLI_TEST_OPTIONS, (backend) => {
  it("builds a three-asset pipeline, stores each value as Arrow and records what each step read", () =>
    withBackendProject(backend, pipelineProject(), async (project) => {
      const result = await project.cli(["materialize", "--select", "*", "--json"]);
      const out = materializeJson(result);
      expect(out).toMatchObject({
        runId: expect.any(String),
        status: "succeeded",
        costUsd: "0",
        assets: [builtStep("raw", 3), builtStep("clean", 2), builtStep("reports/daily", 1)],
      });

      const steps = await withStore(project, async (store) => {
        const materializations = await store.db
          .selectFrom("strata.materializations")
          .select(["id", "asset_key", "partition_key", "status", "row_count", "storage_path"])
          .where("run_id", "=", out.runId)
          .execute();
        const inputs = await store.db
          .selectFrom("strata.materialization_inputs")
          .select(["materialization_id", "input_materialization_id"])
          .execute();
        return { materializations, inputs };
      });
      const byKey = new Map(steps.materializations.map((m) => [m.asset_key, m]));
      expect([...byKey.keys()].sort()).toEqual(["clean", "raw", "reports/daily"]);
      const storage = join(project.project.dir, ".strata", "storage");
      const expected: Record<string, { dir: string; rows: unknown[] }> = {
        raw: { dir: join(storage, "raw", "__all__"), rows: RAW_ROWS },
        clean: { dir: join(storage, "clean", "__all__"), rows: CLEAN_ROWS },
        "reports/daily": { dir: join(storage, "reports", "daily", "__all__"), rows: REPORT_ROWS },
      };
      for (const [key, { dir, rows }] of Object.entries(expected)) {
        const m = byKey.get(key)!;
        expect(m).toMatchObject({
          status: "succeeded",
          partition_key: null,
          row_count: rows.length,
        });
        // recorded relative to the storage root
        expect(m.storage_path).toBe(`${key}/__all__/${m.id}.arrow`);
        expect(await storedRows(join(dir, `${m.id}.arrow`)), key).toEqual(rows);
      }

      // provenance: each step links to the materialization it read, the root to none
      const links = steps.inputs.map(
        (i) => `${i.materialization_id} <- ${i.input_materialization_id}`,
      );
      const id = (key: string) => byKey.get(key)!.id;
      expect(links.sort()).toEqual(
        [`${id("clean")} <- ${id("raw")}`, `${id("reports/daily")} <- ${id("clean")}`].sort(),
      );
    }));
});

/** `raw` → `clean` → `report`, with the code version of `raw` given. */
function versionedProject(rawVersion: string): string {
  return `import { asset, defineProject } from "strata";

export const raw = asset({ key: "raw", codeVersion: ${JSON.stringify(rawVersion)}, compute: async () => [{ id: 1 }] });
export const clean = asset({ key: "clean", codeVersion: "1", deps: { raw }, compute: async () => [{ id: 1 }] });
export const report = asset({ key: "report", codeVersion: "1", deps: { clean }, compute: async () => [{ id: 1 }] });

export default defineProject({ assets: [raw, clean, report] });
`;
}

/** `docs` has static partitions `en`, `de`; `events` is daily from 2024-01-01. */
function partitionedProject(): string {
  return `import { asset, dailyPartitions, defineProject, staticPartitions } from "strata";

export const docs = asset({
  key: "docs",
  partitions: staticPartitions(["en", "de"]),
  compute: async (ctx) => [{ lang: ctx.partitionKey }],
});
export const events = asset({
  key: "events",
  partitions: dailyPartitions({ start: "2024-01-01" }),
  compute: async (ctx) => [{ day: ctx.partitionKey }],
});

export default defineProject({ assets: [docs, events] });
`;
}

interface ListedAsset {
  key: string;
  status: string;
  causes: string[];
}

async function listStatus(project: BackendProject): Promise<Record<string, ListedAsset>> {
  const result = await project.cli(["list", "--json"]);
  expect(result.code, result.stderr).toBe(0);
  const rows = JSON.parse(result.stdout) as ListedAsset[];
  return Object.fromEntries(rows.map(({ key, status, causes }) => [key, { key, status, causes }]));
}

describe.concurrent("strata materialize", CLI_TEST_OPTIONS, () => {
  it("makes assets fresh, and stale after a code version or an upstream rebuild, one level deep", async () => {
    const project = await createBackendProject("pglite", versionedProject("1"));
    try {
      materializeJson(await project.cli(["materialize", "--select", "*", "--json"]));
      const fresh = (key: string) => ({ key, status: "fresh", causes: [] });
      expect(await listStatus(project)).toEqual({
        raw: fresh("raw"),
        clean: fresh("clean"),
        report: fresh("report"),
      });

      // a new code version makes that asset stale, not its children (Dagster's rules)
      await project.project.write({ "strata.config.ts": versionedProject("2") });
      expect(await listStatus(project)).toEqual({
        raw: { key: "raw", status: "stale", causes: ["has a new code version"] },
        clean: fresh("clean"),
        report: fresh("report"),
      });

      // rebuilding only raw makes its direct child stale; the grandchild stays fresh
      const rebuilt = materializeJson(
        await project.cli(["materialize", "--select", "raw", "--json"]),
      );
      expect(rebuilt.assets.map((a) => a.key)).toEqual(["raw"]);
      expect(await listStatus(project)).toEqual({
        raw: fresh("raw"),
        clean: {
          key: "clean",
          status: "stale",
          causes: ['has a new dependency materialization of "raw"'],
        },
        report: fresh("report"),
      });
    } finally {
      await project.dispose();
    }
  });

  it("builds static partitions given with --partition and refuses missing or unknown ones", async () => {
    const project = await createBackendProject("pglite", partitionedProject());
    try {
      const missing = usageError(await project.cli(["materialize", "--select", "docs"]));
      expect(missing).toContain('asset "docs" is partitioned');
      expect(missing).toContain("--partition");

      const unknown = usageError(
        await project.cli(["materialize", "--select", "docs", "--partition", "eng"]),
      );
      expect(unknown).toContain('"eng" is not a partition of asset "docs"');
      expect(unknown).toContain('did you mean "en"?');

      // a dry run prints the plan and builds and records nothing
      const dry = await project.cli([
        "materialize",
        "--select",
        "docs",
        "--partition",
        "en",
        "--partition",
        "de",
        "--dry-run",
      ]);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain("dry run");
      expect(dry.stdout).toContain("docs[en]");
      expect(dry.stdout).toContain("docs[de]");
      const runs = await project.cli(["runs", "--json"]);
      expect(runs.code, runs.stderr).toBe(0);
      expect(JSON.parse(runs.stdout)).toEqual([]);
      expect(existsSync(join(project.project.dir, ".strata", "storage"))).toBe(false);

      const built = materializeJson(
        await project.cli(["materialize", "--select", "docs", "--partition", "en", "--json"]),
      );
      expect(built).toMatchObject({ status: "succeeded", assets: [builtStep("docs", 1, "en")] });
      const files = await arrowFiles(project, "docs", "en");
      expect(files).toHaveLength(1);
      expect(
        await storedRows(join(project.project.dir, ".strata", "storage", "docs", "en", files[0]!)),
      ).toEqual([{ lang: "en" }]);
      expect(await arrowFiles(project, "docs", "de")).toEqual([]);
    } finally {
      await project.dispose();
    }
  });

  it("builds every partition with --all-partitions, and says when it cannot", async () => {
    const project = await createBackendProject("pglite", partitionedProject());
    try {
      const missing = usageError(await project.cli(["materialize", "--select", "docs"]));
      expect(missing).toContain("--all-partitions");

      const built = materializeJson(
        await project.cli(["materialize", "--select", "docs", "--all-partitions", "--json"]),
      );
      expect(built).toMatchObject({
        status: "succeeded",
        assets: [builtStep("docs", 1, "en"), builtStep("docs", 1, "de")],
      });
      expect(await arrowFiles(project, "docs", "de")).toHaveLength(1);

      // static and daily partitions in one selection: no one set of keys fits both
      const mixed = usageError(
        await project.cli(["materialize", "--select", "*", "--all-partitions"]),
      );
      expect(mixed).toContain('asset "docs" is static [en, de]');
      expect(mixed).toContain('asset "events" is daily from 2024-01-01');
      const both = usageError(
        await project.cli([
          "materialize",
          "--select",
          "docs",
          "--all-partitions",
          "--partition",
          "en",
        ]),
      );
      expect(both).toContain("leave out --partition");
    } finally {
      await project.dispose();
    }
  });

  it("builds each daily partition of a --partition-range", async () => {
    const project = await createBackendProject("pglite", partitionedProject());
    try {
      const days = ["2024-02-28", "2024-02-29", "2024-03-01"];
      const built = materializeJson(
        await project.cli([
          "materialize",
          "--select",
          "events",
          "--partition-range",
          "2024-02-28..2024-03-01",
          "--json",
        ]),
      );
      expect(built).toMatchObject({
        status: "succeeded",
        assets: days.map((day) => builtStep("events", 1, day)),
      });
      for (const day of days) {
        const files = await arrowFiles(project, "events", day);
        expect(files, day).toHaveLength(1);
        expect(
          await storedRows(
            join(project.project.dir, ".strata", "storage", "events", day, files[0]!),
          ),
        ).toEqual([{ day }]);
      }
      expect(await arrowFiles(project, "events", "2024-03-02")).toEqual([]);
    } finally {
      await project.dispose();
    }
  });

  it("exits 2 naming --concurrency when it is not a positive integer", async () => {
    const project = await createBackendProject("pglite", versionedProject("1"));
    try {
      for (const value of ["0", "abc"]) {
        const line = usageError(
          await project.cli(["materialize", "--select", "*", "--concurrency", value]),
        );
        expect(line).toContain("--concurrency");
        expect(line).toContain(`"${value}"`);
      }
    } finally {
      await project.dispose();
    }
  });

  it("exits 2 on a selection that matches nothing and records no run", async () => {
    const project = await createBackendProject("pglite", versionedProject("1"));
    try {
      const line = usageError(await project.cli(["materialize", "--select", "key:nope"]));
      expect(line).toContain('selection "key:nope" matches no asset');
      const runs = await project.cli(["runs", "--json"]);
      expect(runs.code, runs.stderr).toBe(0);
      expect(JSON.parse(runs.stdout)).toEqual([]);
      expect(existsSync(join(project.project.dir, ".strata", "storage"))).toBe(false);
    } finally {
      await project.dispose();
    }
  });
});
