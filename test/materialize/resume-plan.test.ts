import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { StrataError } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import {
  type PlanRequest,
  planMaterialization,
} from "../../src/materialize/materialization-plan.js";
import { planResume } from "../../src/materialize/resume-plan.js";
import type { RunResult } from "../../src/materialize/run-result.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

type Assets = ReadonlyArray<AssetDefinition<object>>;

const rows = async () => [{ id: 1 }];
const failing = async (): Promise<Array<{ id: number }>> => {
  throw new Error("not ready");
};

/** A project of `assets`, as the CLI loads one (name and file included). */
function projectOf(assets: Assets, name = "shop") {
  const definition = defineProject({ assets });
  return {
    definition,
    graph: AssetGraph.fromAssets(definition.assets),
    name,
    file: `/srv/${name}/strata.config.ts`,
  };
}

/** What `planResume` throws, with its code. */
async function refusal(promise: Promise<unknown>): Promise<StrataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StrataError);
  return error as StrataError;
}

describe.each(BACKENDS)("planResume on %s", (backend) => {
  let store: TestStore;
  let storageRoot: string;
  let removeDir: () => Promise<void>;

  beforeAll(async () => {
    store = await createTestStore(backend);
    const dir = await createTempDir("strata-resume-");
    storageRoot = join(dir.path, "storage");
    removeDir = dir.remove;
  });

  afterAll(async () => {
    await store?.dispose();
    await removeDir?.();
  });

  async function run(
    project: ReturnType<typeof projectOf>,
    request: PlanRequest,
    resumedFrom: string | null = null,
  ): Promise<RunResult> {
    const plan = planMaterialization(project.graph, request);
    return executeRun({ project, store, plan, storageRoot, resumedFrom });
  }

  it("replays the steps the run planned, not what its selection matches now", async () => {
    const a = asset({ key: "replay/a", compute: rows });
    const b = asset({ key: "replay/b", deps: { a }, compute: failing });
    const first = await run(projectOf([a, b]), { selection: "key:replay/*" });
    expect(first.status).toBe("failed");

    // the project grew an asset that the selection matches, and b was fixed
    const fixed = asset({ key: "replay/b", deps: { a }, compute: rows });
    const added = asset({ key: "replay/z", compute: rows });
    const resume = await planResume({
      db: store.db,
      project: projectOf([a, fixed, added]),
      run: first.runId,
    });
    expect(resume.plan.steps.map((s) => s.id)).toEqual(["replay/b"]);
    expect(resume.chain).toEqual([first.runId]);
    expect(resume.spentUsd).toBe("0");
  });

  it("refuses, naming them, planned assets and partitions the project no longer has", async () => {
    const languages = staticPartitions(["en", "de"]);
    const a = asset({ key: "lost/a", compute: rows });
    const p = asset({ key: "lost/p", partitions: languages, deps: { a }, compute: failing });
    const b = asset({ key: "lost/b", deps: { a }, compute: failing });
    const first = await run(projectOf([a, p, b]), {
      selection: "key:lost/*",
      partitions: ["en", "de"],
    });
    expect(first.status).toBe("failed");

    const withoutB = await refusal(
      planResume({ db: store.db, project: projectOf([a, p]), run: first.runId }),
    );
    expect(withoutB.code).toBe("run_not_resumable");
    expect(withoutB.message).toContain('"lost/b"');
    expect(withoutB.message).not.toContain('"lost/p');

    const fewerPartitions = asset({
      key: "lost/p",
      partitions: staticPartitions(["en"]),
      deps: { a },
      compute: rows,
    });
    const withoutDe = await refusal(
      planResume({ db: store.db, project: projectOf([a, fewerPartitions, b]), run: first.runId }),
    );
    expect(withoutDe.message).toContain('"lost/p[de]"');
    expect(withoutDe.message).not.toContain('"lost/p[en]"');

    const unpartitioned = asset({ key: "lost/p", deps: { a }, compute: rows });
    const noPartitions = await refusal(
      planResume({ db: store.db, project: projectOf([a, unpartitioned, b]), run: first.runId }),
    );
    expect(noPartitions.message).toContain('"lost/p[en]", "lost/p[de]"');
  });

  it("names the project that started the run when another one is loaded", async () => {
    const a = asset({ key: "own/a", compute: failing });
    const first = await run(projectOf([a], "alpha"), { selection: "own/a" });
    const x = asset({ key: "own/x", compute: rows });
    const error = await refusal(
      planResume({ db: store.db, project: projectOf([x], "beta"), run: first.runId }),
    );
    expect(error.code).toBe("run_not_resumable");
    expect(error.message).toContain(
      `run ${first.runId} belongs to project "alpha" (/srv/alpha/strata.config.ts), not to project "beta"`,
    );
    expect(error.message).toContain('"own/a"');
  });

  it("resumes a run once: a second resume of it is refused, also when both were planned at once", async () => {
    const a = asset({ key: "once/a", compute: failing });
    const project = projectOf([a]);
    const first = await run(project, { selection: "once/a" });
    // two resumes planned before either started
    const [one, two] = await Promise.all([
      planResume({ db: store.db, project, run: first.runId }),
      planResume({ db: store.db, project, run: first.runId }),
    ]);
    const second = await executeRun({
      project,
      store,
      plan: one.plan,
      storageRoot,
      resumedFrom: first.runId,
    });
    expect(second.status).toBe("failed");
    const late = await refusal(
      executeRun({ project, store, plan: two.plan, storageRoot, resumedFrom: first.runId }),
    );
    expect(late.code).toBe("run_not_resumable");
    expect(late.message).toContain(`already resumed by run ${second.runId}`);
    const runs = await store.db
      .selectFrom("strata.runs")
      .select("id")
      .where("resumed_from", "=", first.runId)
      .execute();
    expect(runs.map((r) => r.id)).toEqual([second.runId]);

    const again = await refusal(planResume({ db: store.db, project, run: first.runId }));
    expect(again.message).toContain(`strata runs resume ${second.runId}`);
    const next = await planResume({ db: store.db, project, run: second.runId });
    expect(next.chain).toEqual([second.runId, first.runId]);
  });
});
