import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { executeRun } from "../../src/materialize/execute-run.js";
import {
  type PlanRequest,
  planMaterialization,
} from "../../src/materialize/materialization-plan.js";
import type { RunResult } from "../../src/materialize/run-result.js";
import { readArrowFile } from "../../src/values/arrow-file.js";
import { storedValuePath } from "../../src/values/storage-path.js";
import { stagingDir } from "../../src/values/temp-file.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { startTempFileWriter, type TempFileWriter } from "../helpers/temp-file-writer.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

// What materialize writes to and reads from the Arrow files of a project: checksums, column
// types across materializations, values that cannot be stored.
describe.each(BACKENDS)("stored values on %s", (backend) => {
  let store: TestStore;
  let storageRoot: string;
  let removeDir: () => Promise<void>;

  beforeAll(async () => {
    store = await createTestStore(backend);
    const dir = await createTempDir("strata-stored-values-");
    storageRoot = join(dir.path, ".strata", "storage");
    removeDir = dir.remove;
  });
  afterAll(async () => {
    await store?.dispose();
    await removeDir?.();
  });

  async function run(
    assets: ReadonlyArray<AssetDefinition<object>>,
    request: PlanRequest,
  ): Promise<RunResult> {
    const definition = defineProject({ assets });
    const graph = AssetGraph.fromAssets(definition.assets);
    const plan = planMaterialization(graph, request);
    return executeRun({ project: { definition, graph }, store, plan, storageRoot });
  }

  /** The materialization's recorded checksum and its file (recorded under the storage root). */
  async function recorded(materializationId: string) {
    const row = await store.db
      .selectFrom("strata.materializations")
      .select(["storage_path", "storage_sha256"])
      .where("id", "=", materializationId)
      .executeTakeFirstOrThrow();
    return {
      ...row,
      storage_path:
        row.storage_path === null ? null : storedValuePath(storageRoot, row.storage_path),
    };
  }

  describe("checksums", () => {
    let downstreamCalls = 0;
    const raw = asset({
      key: "sums/raw",
      partitions: staticPartitions(["en", "de"]),
      compute: (ctx) => [{ lang: ctx.partitionKey, text: `hello ${ctx.partitionKey}` }],
    });
    const report = asset({
      key: "sums/report",
      deps: { raw },
      compute: (_ctx, { raw }) => {
        downstreamCalls++;
        return raw.map((r) => ({ text: r.text }));
      },
    });

    it("records the SHA-256 of every stored value with its materialization", async () => {
      const result = await run([raw, report], { selection: "*", partitions: ["en", "de"] });
      expect(result.status).toBe("succeeded");
      for (const step of result.steps) {
        const row = await recorded(step.materializationId);
        const bytes = await readFile(row.storage_path!);
        expect(row.storage_sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
      }
    });

    it("fails the step reading a file changed on disk (same length), naming the asset, partition and file", async () => {
      const built = await run([raw], { selection: "sums/raw", partitions: ["en", "de"] });
      const en = built.steps.find((s) => s.partitionKey === "en")!;
      const { storage_path: path } = await recorded(en.materializationId);
      const bytes = await readFile(path!);
      const at = bytes.indexOf("hello en");
      expect(at).toBeGreaterThan(0);
      bytes.write("jello en", at, "latin1");
      await writeFile(path!, bytes);
      // the changed file is still a valid Arrow file: without the checksum it would be read
      expect((await readArrowFile(path!)).getChild("text")?.get(0)).toBe("jello en");

      downstreamCalls = 0;
      const result = await run([raw, report], { selection: "sums/report", partitions: [] });
      expect(result.status).toBe("failed");
      expect(downstreamCalls).toBe(0);
      const step = result.steps[0]!;
      expect(step.error).toBe(
        `the stored value of partition "en" of asset "sums/raw" ("${path}") was changed after it was written (its SHA-256 no longer matches the one recorded); materialize it again: strata materialize --select "sums/raw" --partition "en"`,
      );
    });

    it("fails the step reading a file that was deleted, naming the asset, partition and file", async () => {
      const built = await run([raw], { selection: "sums/raw", partitions: ["de"] });
      const { storage_path: path } = await recorded(built.steps[0]!.materializationId);
      await run([raw], { selection: "sums/raw", partitions: ["en"] });
      await rm(path!);
      downstreamCalls = 0;
      const result = await run([raw, report], { selection: "sums/report", partitions: [] });
      expect(result.status).toBe("failed");
      expect(downstreamCalls).toBe(0);
      expect(result.steps[0]!.error).toBe(
        `the stored value of partition "de" of asset "sums/raw" ("${path}") does not exist; materialize it again: strata materialize --select "sums/raw" --partition "de"`,
      );
    });
  });

  describe("column types", () => {
    /** Materializes `key` once per value list, returning the stored Arrow type of `score` each time. */
    async function scoreTypes(key: string, runs: ReadonlyArray<ReadonlyArray<number>>) {
      const types: string[] = [];
      for (const scores of runs) {
        const scored = asset({ key, compute: () => scores.map((score) => ({ score })) });
        const result = await run([scored], { selection: key, partitions: [] });
        expect(result.status).toBe("succeeded");
        const { storage_path } = await recorded(result.steps[0]!.materializationId);
        const table = await readArrowFile(storage_path!);
        types.push(String(table.schema.fields[0]?.type));
      }
      return types;
    }

    it("keeps a number column's Arrow type when a later materialization has only whole numbers", async () => {
      expect(
        await scoreTypes("types/fractions-first", [
          [0.5, 1.25],
          [1, 2],
        ]),
      ).toEqual(["Float64", "Float64"]);
    });

    it("keeps a number column's Arrow type when a later materialization has fractions", async () => {
      expect(
        await scoreTypes("types/whole-first", [
          [1, 2],
          [0.5, 3],
        ]),
      ).toEqual(["Float64", "Float64"]);
    });
  });

  describe("temporary files of killed writes", () => {
    const writers: TempFileWriter[] = [];
    afterAll(async () => {
      for (const w of writers) await w.kill();
    });

    it("removes what a killed write left, and keeps what a live writer is writing", async () => {
      const docs = asset({ key: "temp/docs", compute: () => [{ id: "d1" }] });
      const target = (id: string) => join(storageRoot, "temp", "docs", "__all__", `${id}.arrow`);
      const staging = stagingDir(storageRoot);
      const killed = await startTempFileWriter(target("m-killed"), staging);
      const live = await startTempFileWriter(target("m-live"), staging);
      writers.push(killed, live);
      await killed.kill();
      expect(existsSync(killed.tempPath)).toBe(true);

      const result = await run([docs], { selection: "temp/docs", partitions: [] });
      expect(result.status).toBe("succeeded");
      expect(existsSync(killed.tempPath)).toBe(false);
      expect(existsSync(live.tempPath)).toBe(true);
      // the run's own value went through the staging directory and left nothing there
      await live.kill();
      expect(await readdir(staging)).toEqual([basename(live.tempPath)]);
    });
  });

  describe("values that cannot be stored", () => {
    it("fails the step with a one-line bad_value naming the asset and column for a row that contains itself", async () => {
      const cyclic = asset({
        key: "hostile/cycle",
        compute: () => {
          const row: Record<string, unknown> = { id: "d1", meta: { deep: {} } };
          (row.meta as { deep: Record<string, unknown> }).deep.back = row;
          return [row];
        },
      });
      const result = await run([cyclic], { selection: "hostile/cycle", partitions: [] });
      expect(result.status).toBe("failed");
      expect(result.steps[0]!.error).toBe(
        'asset "hostile/cycle" column "meta" row 0 holds a reference cycle at meta.deep.back.meta, which cannot be stored as JSON; remove the back reference',
      );
    });

    it("fails the step with a one-line bad_value for metadata that contains itself", async () => {
      const meta = asset({
        key: "hostile/metadata",
        compute: (ctx) => {
          const info: Record<string, unknown> = {};
          info.self = info;
          ctx.metadata({ info });
          return [];
        },
      });
      const result = await run([meta], { selection: "hostile/metadata", partitions: [] });
      expect(result.status).toBe("failed");
      expect(result.steps[0]!.error).toMatch(/^asset "hostile\/metadata" attached metadata/);
      expect(result.steps[0]!.error).not.toContain("\n");
    });
  });
});
