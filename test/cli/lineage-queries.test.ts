import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LineageJson } from "../../src/lineage/lineage-json.js";
import { embeddedDataDir, openEmbeddedStore } from "../../src/store/store.js";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly) in one project materialized twice: everything, then only `report`,
// which must read `clean` from the first run.

const PIPELINE_PROJECT = `import { asset, defineProject } from "strata";

export const raw = asset({
  key: "raw",
  compute: async () => [{ id: "a", text: " Alpha " }, { id: "b", text: " Beta " }],
});
export const clean = asset({
  key: "clean",
  deps: { raw },
  compute: async (_ctx, { raw }) => raw.map((r) => ({ id: r.id, text: r.text.trim() })),
});
export const report = asset({
  key: "report",
  deps: { clean },
  compute: async (_ctx, { clean }) => [{ documents: clean.length }],
});

export default defineProject({ assets: [raw, clean, report] });
`;

interface StepInputJson {
  key: string;
  partition: string | null;
  materializationId: string;
  runId: string;
  finishedAt: string | null;
  dataVersion: string | null;
}

interface RunShowJson {
  id: string;
  status: string;
  steps: Array<{
    materializationId: string;
    key: string;
    status: string;
    dataVersion: string | null;
    inputs?: StepInputJson[];
  }>;
}

interface MaterializationRow {
  id: string;
  run_id: string;
  asset_key: string;
  finished_at: Date | null;
  data_version: string | null;
}

/** The shortest prefix of `id` (at least 4 characters) that `other` does not share. */
function uniquePrefix(id: string, other: string): string {
  let i = 0;
  while (i < id.length && id[i] === other[i]) i++;
  return id.slice(0, Math.max(4, i + 1));
}

function ok(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

describe(
  "strata runs show --lineage and strata lineage --upstream/--downstream",
  CLI_TEST_OPTIONS,
  () => {
    let project: ProjectFixture;
    let firstRun: string;
    let secondRun: string;
    /** The succeeded materializations of both runs, read from the database. */
    let materializations: MaterializationRow[];

    const materializationOf = (runId: string, key: string): MaterializationRow => {
      const row = materializations.find((m) => m.run_id === runId && m.asset_key === key);
      if (row === undefined) throw new Error(`no materialization of ${key} in ${runId}`);
      return row;
    };
    /** What `runs show --lineage --json` must list for an input read from `m`. */
    const inputFrom = (m: MaterializationRow): StepInputJson => ({
      key: m.asset_key,
      partition: null,
      materializationId: m.id,
      runId: m.run_id,
      finishedAt: m.finished_at?.toISOString() ?? null,
      dataVersion: m.data_version,
    });

    beforeAll(async () => {
      project = await createProjectFixture(PIPELINE_PROJECT, { migratedDatabase: true });
      const first = JSON.parse(ok(await project.cli(["materialize", "--select", "*", "--json"])));
      expect(first.status).toBe("succeeded");
      const second = JSON.parse(
        ok(await project.cli(["materialize", "--select", "report", "--json"])),
      );
      expect(second.status).toBe("succeeded");
      firstRun = first.runId;
      secondRun = second.runId;
      const store = await openEmbeddedStore(embeddedDataDir(project.dir));
      try {
        materializations = await store.db
          .selectFrom("strata.materializations")
          .select(["id", "run_id", "asset_key", "finished_at", "data_version"])
          .where("status", "=", "succeeded")
          .execute();
      } finally {
        await store.close();
      }
    }, 120_000);

    afterAll(async () => {
      await project?.remove();
    });

    it("lists for each step the upstream materializations it read: run, finish time, data version", async () => {
      expect(materializations).toHaveLength(4);
      for (const m of materializations) expect(m.data_version).toEqual(expect.any(String));

      const second = JSON.parse(
        ok(await project.cli(["runs", "show", secondRun, "--lineage", "--json"])),
      ) as RunShowJson;
      expect(second.id).toBe(secondRun);
      expect(second.steps.map((s) => [s.key, s.status])).toEqual([["report", "succeeded"]]);
      // the second run built only report, which read clean as the FIRST run left it
      expect(second.steps[0]?.inputs).toEqual([inputFrom(materializationOf(firstRun, "clean"))]);

      const first = JSON.parse(
        ok(
          await project.cli([
            "runs",
            "show",
            uniquePrefix(firstRun, secondRun),
            "--lineage",
            "--json",
          ]),
        ),
      ) as RunShowJson;
      expect(first.id).toBe(firstRun);
      expect(Object.fromEntries(first.steps.map((s) => [s.key, s.inputs]))).toEqual({
        raw: [],
        clean: [inputFrom(materializationOf(firstRun, "raw"))],
        report: [inputFrom(materializationOf(firstRun, "clean"))],
      });
      // the data version a step lists for its input is the one the input's own step recorded
      const clean = first.steps.find((s) => s.key === "clean");
      expect(second.steps[0]?.inputs?.[0]?.dataVersion).toBe(clean?.dataVersion);
      expect(second.steps[0]?.inputs?.[0]?.materializationId).toBe(clean?.materializationId);
    });

    it('prints in text which run each input came from: "from run <id>" or "from this run"', async () => {
      const second = ok(await project.cli(["runs", "show", secondRun, "--lineage"]));
      const clean = materializationOf(firstRun, "clean");
      expect(second).toContain(`clean from run ${firstRun}`);
      expect(second).toContain(clean.finished_at?.toISOString() ?? "?");
      expect(second).toContain(`data version ${clean.data_version}`);

      const first = ok(await project.cli(["runs", "show", firstRun, "--lineage"]));
      expect(first).toMatch(/raw: no upstream inputs/);
      expect(first).toContain("raw from this run");
      expect(first).toContain("clean from this run");
      expect(first).not.toContain(`from run ${firstRun}`);
    });

    it("lists exactly report, clean and raw upstream of report, and all three downstream of raw", async () => {
      const [upstream, downstream, midUp] = await Promise.all(
        [
          ["report", "--upstream"],
          ["raw", "--downstream"],
          ["clean", "--upstream"],
        ].map(
          async (args) =>
            JSON.parse(
              ok(await project.cli(["lineage", ...args, "--format", "json"])),
            ) as LineageJson,
        ),
      );
      const keys = (json: LineageJson | undefined) => json?.assets.map((a) => a.key).sort();
      const edges = (json: LineageJson | undefined) =>
        json?.edges.map((e) => `${e.from}->${e.to}`).sort();
      expect(keys(upstream)).toEqual(["clean", "raw", "report"]);
      expect(edges(upstream)).toEqual(["clean->report", "raw->clean"]);
      expect(keys(downstream)).toEqual(["clean", "raw", "report"]);
      expect(edges(downstream)).toEqual(["clean->report", "raw->clean"]);
      // a middle asset: its upstream stops at itself
      expect(keys(midUp)).toEqual(["clean", "raw"]);
      expect(edges(midUp)).toEqual(["raw->clean"]);
    });
  },
);
