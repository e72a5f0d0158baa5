import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { type AssetDefinition, asset } from "../../src/assets/asset-definition.js";
import { staticPartitions } from "../../src/assets/partitions.js";
import { defineProject } from "../../src/assets/project-definition.js";
import { ComputeError, StrataError } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { type ExecuteRunOptions, executeRun } from "../../src/materialize/execute-run.js";
import {
  type Executor,
  InProcessExecutor,
  type StepOutcome,
} from "../../src/materialize/executor.js";
import {
  type PlanRequest,
  planMaterialization,
} from "../../src/materialize/materialization-plan.js";
import type { RunResult } from "../../src/materialize/run-result.js";
import { reapAbandonedRuns } from "../../src/store/run-records.js";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { readArrowFile } from "../../src/values/arrow-file.js";
import { storedValuePath } from "../../src/values/storage-path.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

/** The real in-process executor, keeping the outcomes (and so the thrown errors) it returned. */
class RecordingExecutor implements Executor {
  outcomes: ReadonlyMap<string, StepOutcome> = new Map();

  async execute(...args: Parameters<Executor["execute"]>) {
    this.outcomes = await new InProcessExecutor().execute(...args);
    return this.outcomes;
  }

  errorOf(stepId: string): unknown {
    const outcome = this.outcomes.get(stepId);
    if (outcome?.status !== "failed") throw new Error(`step "${stepId}" did not fail`);
    return outcome.error;
  }
}

describe.each(BACKENDS)("materialize on %s", (backend) => {
  let store: TestStore;
  let storageRoot: string;
  let removeDir: () => Promise<void>;

  beforeAll(async () => {
    store = await createTestStore(backend);
    const dir = await createTempDir("strata-materialize-");
    storageRoot = join(dir.path, ".strata", "storage");
    removeDir = dir.remove;
  });

  afterAll(async () => {
    await store?.dispose();
    await removeDir?.();
  });

  /** Plans `request` over `assets` and runs it. */
  async function run(
    assets: ReadonlyArray<AssetDefinition<object>>,
    request: PlanRequest,
    extra: Partial<ExecuteRunOptions> = {},
  ): Promise<RunResult> {
    const definition = defineProject({ assets });
    const graph = AssetGraph.fromAssets(definition.assets);
    const plan = planMaterialization(graph, request);
    return executeRun({ project: { definition, graph }, store, plan, storageRoot, ...extra });
  }

  async function runRow(id: string) {
    return store.db
      .selectFrom("strata.runs")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
  }

  /** The run's materialization rows by asset key (and `[partition]`). */
  async function materializationsOf(runId: string) {
    const rows = await store.db
      .selectFrom("strata.materializations")
      .selectAll()
      .where("run_id", "=", runId)
      .execute();
    return new Map(
      rows.map((r) => [
        r.partition_key === null ? r.asset_key : `${r.asset_key}[${r.partition_key}]`,
        r,
      ]),
    );
  }

  /** The materialization ids `id` read, sorted. */
  async function inputsOf(id: string): Promise<string[]> {
    const rows = await store.db
      .selectFrom("strata.materialization_inputs")
      .select("input_materialization_id")
      .where("materialization_id", "=", id)
      .execute();
    return rows.map((r) => r.input_materialization_id).sort();
  }

  /** The rows of a recorded value (its path is recorded relative to the storage root). */
  async function storedRows(path: string | null): Promise<unknown[]> {
    if (path === null) throw new Error("no storage path");
    return tableToRows(await readArrowFile(storedValuePath(storageRoot, path)));
  }

  function must<T>(value: T | undefined): T {
    if (value === undefined) throw new Error("missing");
    return value;
  }

  it("builds a diamond end to end and records values, versions, metadata and provenance", async () => {
    const seen: Record<string, unknown> = {};
    const src = asset({
      key: "e2e/raw/src",
      codeVersion: "1",
      compute: (ctx) => {
        seen.ctx = { runId: ctx.runId, assetKey: ctx.assetKey, partitionKey: ctx.partitionKey };
        ctx.metadata({ source: "unit", count: 1 });
        ctx.metadata({ count: 2, nested: { ok: true } });
        return [
          { id: "d1", n: 1 },
          { id: "d2", n: 2 },
        ];
      },
    });
    const left = asset({
      key: "e2e/left",
      codeVersion: "1",
      deps: { src },
      compute: (_ctx, { src }) => src.map((r) => ({ id: r.id, tenfold: r.n * 10 })),
    });
    const right = asset({
      key: "e2e/right",
      deps: { src },
      compute: async (_ctx, { src }) => src.map((r) => ({ id: r.id, label: `#${r.n}` })),
    });
    const joined = asset({
      key: "e2e/joined",
      deps: { left, right },
      compute: (_ctx, inputs) => {
        expectTypeOf(inputs.left).toEqualTypeOf<{ id: string; tenfold: number }[]>();
        expectTypeOf(inputs.right).toEqualTypeOf<{ id: string; label: string }[]>();
        seen.joinedInputs = inputs;
        return inputs.left.map((l, i) => ({
          id: l.id,
          text: `${inputs.right[i]?.label}:${l.tenfold.toFixed(1)}`,
        }));
      },
    });

    const before = new Date(Date.now() - 1_000);
    const result = await run([joined, right, left, src], { selection: "*" });

    expect(result.status).toBe("succeeded");
    expect(result.error).toBeNull();
    expect(result.steps.map((s) => [s.id, s.status, s.rows])).toEqual([
      ["e2e/raw/src", "succeeded", 2],
      ["e2e/left", "succeeded", 2],
      ["e2e/right", "succeeded", 2],
      ["e2e/joined", "succeeded", 2],
    ]);
    expect(seen.ctx).toEqual({ runId: result.runId, assetKey: "e2e/raw/src", partitionKey: null });
    // downstream receives rows as plain objects, numbers as numbers
    expect(seen.joinedInputs).toEqual({
      left: [
        { id: "d1", tenfold: 10 },
        { id: "d2", tenfold: 20 },
      ],
      right: [
        { id: "d1", label: "#1" },
        { id: "d2", label: "#2" },
      ],
    });

    const runRecord = await runRow(result.runId);
    expect(runRecord).toMatchObject({ status: "succeeded", selection: "*", error: null });
    expect(runRecord.pid).toBe(process.pid);
    expect(runRecord.finished_at).toBeInstanceOf(Date);

    const rows = await materializationsOf(result.runId);
    expect([...rows.keys()].sort()).toEqual(["e2e/joined", "e2e/left", "e2e/raw/src", "e2e/right"]);
    for (const [key, row] of rows) {
      expect(row.status).toBe("succeeded");
      expect(row.row_count).toBe(2);
      expect(row.error).toBeNull();
      expect(row.data_version).toMatch(/^[0-9a-f]{24}$/);
      expect(row.started_at).toBeInstanceOf(Date);
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.started_at!.getTime()).toBeGreaterThanOrEqual(before.getTime());
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at!.getTime());
      // relative to the storage root, "/"-separated: any machine mounting the storage finds it
      expect(row.storage_path).toBe(`${key}/__all__/${row.id}.arrow`);
      expect(existsSync(join(storageRoot, ...key.split("/"), "__all__", `${row.id}.arrow`))).toBe(
        true,
      );
      const step = result.steps.find((s) => s.assetKey === key);
      expect(step?.materializationId).toBe(row.id);
    }
    const [srcRow, leftRow, rightRow, joinedRow] = [
      must(rows.get("e2e/raw/src")),
      must(rows.get("e2e/left")),
      must(rows.get("e2e/right")),
      must(rows.get("e2e/joined")),
    ];
    expect(srcRow.code_version).toBe("1");
    expect(leftRow.code_version).toBe("1");
    expect(rightRow.code_version).toBeNull();
    expect(srcRow.metadata).toEqual({ source: "unit", count: 2, nested: { ok: true } });
    expect(leftRow.metadata).toEqual({});

    expect(await storedRows(srcRow.storage_path)).toEqual([
      { id: "d1", n: 1 },
      { id: "d2", n: 2 },
    ]);
    expect(await storedRows(leftRow.storage_path)).toEqual([
      { id: "d1", tenfold: 10 },
      { id: "d2", tenfold: 20 },
    ]);
    expect(await storedRows(rightRow.storage_path)).toEqual([
      { id: "d1", label: "#1" },
      { id: "d2", label: "#2" },
    ]);
    expect(await storedRows(joinedRow.storage_path)).toEqual([
      { id: "d1", text: "#1:10.0" },
      { id: "d2", text: "#2:20.0" },
    ]);

    expect(await inputsOf(srcRow.id)).toEqual([]);
    expect(await inputsOf(leftRow.id)).toEqual([srcRow.id]);
    expect(await inputsOf(rightRow.id)).toEqual([srcRow.id]);
    expect(await inputsOf(joinedRow.id)).toEqual([leftRow.id, rightRow.id].sort());
  });

  it("reads a dep outside the selection from its latest stored materialization", async () => {
    let builds = 0;
    const a = asset({ key: "store/a", compute: () => [{ v: 1 }] });
    const b = asset({
      key: "store/b",
      deps: { a },
      compute: (_ctx, { a }) => {
        builds += 1;
        return a.map((r) => ({ v: r.v, build: builds }));
      },
    });
    let cInput: unknown;
    const c = asset({
      key: "store/c",
      deps: { b },
      compute: (_ctx, { b }) => {
        cInput = b;
        return b.map((r) => ({ build: r.build }));
      },
    });
    const assets = [a, b, c];

    const first = await run(assets, { selection: "*" });
    expect(first.status).toBe("succeeded");
    const second = await run(assets, { selection: "store/b" });
    expect(second.status).toBe("succeeded");
    const bLatest = must((await materializationsOf(second.runId)).get("store/b"));

    const third = await run(assets, { selection: "store/c" });
    expect(third.status).toBe("succeeded");
    expect(third.steps.map((s) => s.id)).toEqual(["store/c"]);
    // the value of b's second build, read from its Arrow file
    expect(cInput).toEqual([{ v: 1, build: 2 }]);
    const cRow = must((await materializationsOf(third.runId)).get("store/c"));
    expect(await inputsOf(cRow.id)).toEqual([bLatest.id]);
    expect(await storedRows(cRow.storage_path)).toEqual([{ build: 2 }]);
  });

  it("gives the same data version for the same code version and inputs, and a new one otherwise", async () => {
    const make = (version: string) => {
      const a = asset({ key: "dv/a", codeVersion: version, compute: () => [{ x: 1 }] });
      const b = asset({ key: "dv/b", codeVersion: "1", deps: { a }, compute: () => [{ y: 1 }] });
      const loose = asset({ key: "dv/loose", compute: () => [{ z: 1 }] });
      const after = asset({
        key: "dv/after",
        codeVersion: "1",
        deps: { loose },
        compute: () => [{ z: 2 }],
      });
      return [a, b, loose, after];
    };
    const versions = async (result: RunResult) => {
      const rows = await materializationsOf(result.runId);
      return Object.fromEntries([...rows].map(([k, r]) => [k, r.data_version]));
    };

    const one = await versions(await run(make("1"), { selection: "*" }));
    const two = await versions(await run(make("1"), { selection: "*" }));
    expect(two["dv/a"]).toBe(one["dv/a"]);
    expect(two["dv/b"]).toBe(one["dv/b"]);
    // no code version: nothing says the output is the same, so a new version, also downstream
    expect(two["dv/loose"]).not.toBe(one["dv/loose"]);
    expect(two["dv/after"]).not.toBe(one["dv/after"]);

    const bumped = await versions(await run(make("2"), { selection: "*" }));
    expect(bumped["dv/a"]).not.toBe(one["dv/a"]);
    expect(bumped["dv/b"]).not.toBe(one["dv/b"]);
  });

  it("fails the step that throws, skips its downstream and finishes the other branch", async () => {
    const boom = new Error("boom");
    const root = asset({ key: "fail/root", compute: () => [{ id: 1 }] });
    const bad = asset({
      key: "fail/bad",
      deps: { root },
      compute: () => {
        throw boom;
      },
    });
    const afterBad = asset({ key: "fail/after", deps: { bad }, compute: () => [{ id: 1 }] });
    const good = asset({ key: "fail/good", deps: { root }, compute: () => [{ id: 2 }] });
    const executor = new RecordingExecutor();

    const result = await run([root, bad, afterBad, good], { selection: "*" }, { executor });

    expect(result.status).toBe("failed");
    expect(Object.fromEntries(result.steps.map((s) => [s.id, s.status]))).toEqual({
      "fail/root": "succeeded",
      "fail/bad": "failed",
      "fail/good": "succeeded",
      "fail/after": "skipped",
    });
    const error = executor.errorOf("fail/bad");
    expect(error).toBeInstanceOf(ComputeError);
    expect(error).toMatchObject({ code: "compute_failed", assetKey: "fail/bad", cause: boom });
    expect((error as Error).message).toBe('asset "fail/bad" failed: boom');

    const expectedError =
      '1 step failed (first: "fail/bad": asset "fail/bad" failed: boom); 1 skipped';
    expect(result.error).toBe(expectedError);
    expect(await runRow(result.runId)).toMatchObject({ status: "failed", error: expectedError });

    const rows = await materializationsOf(result.runId);
    expect(rows.get("fail/bad")).toMatchObject({
      status: "failed",
      error: 'asset "fail/bad" failed: boom',
      storage_path: null,
      data_version: null,
    });
    expect(rows.get("fail/bad")?.finished_at).toBeInstanceOf(Date);
    expect(rows.get("fail/after")).toMatchObject({
      status: "skipped",
      error: 'upstream step "fail/bad" did not succeed',
    });
    expect(rows.get("fail/good")?.status).toBe("succeeded");
    expect(await storedRows(rows.get("fail/good")?.storage_path ?? null)).toEqual([{ id: 2 }]);
  });

  it("wraps a thrown non-Error with the asset key and keeps it as the cause", async () => {
    const odd = asset({
      key: "odd/thrower",
      compute: () => {
        throw "plain string";
      },
    });
    const executor = new RecordingExecutor();
    const result = await run([odd], { selection: "*" }, { executor });
    expect(result.steps[0]?.error).toBe('asset "odd/thrower" failed: plain string');
    expect(executor.errorOf("odd/thrower")).toMatchObject({ cause: "plain string" });
  });

  it("fails a step whose compute returns neither rows nor a Table with bad_value", async () => {
    const fn = asset({ key: "bad/fn", compute: () => (() => []) as never });
    const text = asset({ key: "bad/text", compute: () => "rows" as never });
    const executor = new RecordingExecutor();
    const result = await run([fn, text], { selection: "key:bad/*" }, { executor });
    expect(result.status).toBe("failed");
    for (const [key, described] of [
      ["bad/fn", "a function"],
      ["bad/text", "a string"],
    ] as const) {
      const error = executor.errorOf(key);
      expect(error).toBeInstanceOf(StrataError);
      expect((error as StrataError).code).toBe("bad_value");
      const message = `asset "${key}" returned ${described}; compute must return an array of row objects or an Arrow Table`;
      expect((error as Error).message).toBe(message);
      const row = must((await materializationsOf(result.runId)).get(key));
      expect(row).toMatchObject({ status: "failed", error: message, storage_path: null });
    }
  });

  it("fails a step whose dep was never materialized and is not selected", async () => {
    const up = asset({ key: "missing/up", compute: () => [{ id: 1 }] });
    const down = asset({ key: "missing/down", deps: { up }, compute: () => [{ id: 1 }] });
    const executor = new RecordingExecutor();
    const result = await run([up, down], { selection: "missing/down" }, { executor });
    expect(result.status).toBe("failed");
    expect(executor.errorOf("missing/down")).toMatchObject({ code: "upstream_missing" });
    expect(result.steps[0]?.error).toBe(
      'asset "missing/down" reads "missing/up", which has never been materialized; materialize it first or select it too (--select "+missing/down")',
    );
  });

  it("builds partitions by identity and hands every partition to an unpartitioned asset", async () => {
    const languages = staticPartitions(["en", "de"]);
    const docs = asset({
      key: "part/docs",
      partitions: languages,
      compute: (ctx) => [{ lang: ctx.partitionKey ?? "?", n: ctx.partitionKey === "en" ? 1 : 2 }],
    });
    const seenByPartition: Record<string, unknown> = {};
    const upper = asset({
      key: "part/upper",
      partitions: languages,
      deps: { docs },
      compute: (ctx, { docs }) => {
        seenByPartition[ctx.partitionKey ?? "?"] = docs;
        return docs.map((d) => ({ lang: d.lang.toUpperCase() }));
      },
    });
    const everything = asset({
      key: "part/all",
      deps: { docs },
      compute: (_ctx, { docs }) => [...docs].sort((x, y) => x.n - y.n),
    });
    const assets = [docs, upper, everything];

    const result = await run(assets, { selection: "*", partitions: ["en", "de"] });
    expect(result.status).toBe("succeeded");
    expect(seenByPartition).toEqual({ en: [{ lang: "en", n: 1 }], de: [{ lang: "de", n: 2 }] });

    const rows = await materializationsOf(result.runId);
    const docsEn = must(rows.get("part/docs[en]"));
    const docsDe = must(rows.get("part/docs[de]"));
    expect(docsEn.partition_key).toBe("en");
    expect(docsEn.storage_path).toBe(`part/docs/en/${docsEn.id}.arrow`);
    expect(await storedRows(must(rows.get("part/upper[de]")).storage_path)).toEqual([
      { lang: "DE" },
    ]);
    expect(await inputsOf(must(rows.get("part/upper[en]")).id)).toEqual([docsEn.id]);
    expect(await inputsOf(must(rows.get("part/upper[de]")).id)).toEqual([docsDe.id]);
    const all = must(rows.get("part/all"));
    expect(all.partition_key).toBeNull();
    expect(await inputsOf(all.id)).toEqual([docsEn.id, docsDe.id].sort());
    expect(await storedRows(all.storage_path)).toEqual([
      { lang: "en", n: 1 },
      { lang: "de", n: 2 },
    ]);

    // the unpartitioned asset alone reads every partition from the store
    const again = await run(assets, { selection: "part/all" });
    expect(again.status).toBe("succeeded");
    const allAgain = must((await materializationsOf(again.runId)).get("part/all"));
    expect(await inputsOf(allAgain.id)).toEqual([docsEn.id, docsDe.id].sort());
    expect(await storedRows(allAgain.storage_path)).toEqual([
      { lang: "en", n: 1 },
      { lang: "de", n: 2 },
    ]);
  });

  it("fails a partition whose upstream partition was never materialized", async () => {
    const languages = staticPartitions(["en", "de"]);
    const src = asset({ key: "pmiss/src", partitions: languages, compute: () => [{ a: 1 }] });
    const dst = asset({
      key: "pmiss/dst",
      partitions: languages,
      deps: { src },
      compute: () => [{ a: 1 }],
    });
    const first = await run([src, dst], { selection: "pmiss/src", partitions: ["en"] });
    expect(first.status).toBe("succeeded");
    const result = await run([src, dst], { selection: "pmiss/dst", partitions: ["en", "de"] });
    expect(Object.fromEntries(result.steps.map((s) => [s.id, s.status]))).toEqual({
      "pmiss/dst[en]": "succeeded",
      "pmiss/dst[de]": "failed",
    });
    expect(result.steps[1]?.error).toContain(
      'asset "pmiss/dst" reads partition "de" of "pmiss/src", which has never been materialized',
    );
  });

  describe("cancellation", () => {
    it("ends the run canceled, keeping finished steps and canceling the rest", async () => {
      const abort = new AbortController();
      const slowStarted = deferred();
      const never = deferred<never>();
      const first = asset({ key: "cancel1/first", compute: () => [{ id: 1 }] });
      // ignores its signal: the grace period ends it
      const slow = asset({
        key: "cancel1/slow",
        deps: { first },
        compute: async () => {
          slowStarted.resolve();
          return never.promise;
        },
      });
      const last = asset({ key: "cancel1/last", deps: { slow }, compute: () => [{ id: 3 }] });
      void slowStarted.promise.then(() => abort.abort());

      const result = await run(
        [first, slow, last],
        { selection: "*" },
        { signal: abort.signal, cancelGraceMs: 30 },
      );

      expect(result.status).toBe("canceled");
      expect(result.error).toBe("the run was canceled");
      expect(Object.fromEntries(result.steps.map((s) => [s.id, s.status]))).toEqual({
        "cancel1/first": "succeeded",
        "cancel1/slow": "canceled",
        "cancel1/last": "canceled",
      });
      expect(await runRow(result.runId)).toMatchObject({
        status: "canceled",
        error: "the run was canceled",
      });
      const rows = await materializationsOf(result.runId);
      expect(rows.get("cancel1/first")?.status).toBe("succeeded");
      expect(await storedRows(rows.get("cancel1/first")?.storage_path ?? null)).toEqual([
        { id: 1 },
      ]);
      expect(rows.get("cancel1/slow")).toMatchObject({
        status: "canceled",
        error: "the run was canceled while this step was running",
      });
      expect(rows.get("cancel1/last")).toMatchObject({
        status: "canceled",
        error: "the run was canceled before it started",
      });
    });

    it("records a step that stops on ctx.signal, and what it would have fed, as canceled", async () => {
      const abort = new AbortController();
      const first = asset({ key: "cancel2/first", compute: () => [{ id: 1 }] });
      const slow = asset({
        key: "cancel2/slow",
        deps: { first },
        compute: (ctx) =>
          new Promise<{ id: number }[]>((_resolve, reject) => {
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
            abort.abort(new Error("interrupted by the user"));
          }),
      });
      const last = asset({ key: "cancel2/last", deps: { slow }, compute: () => [{ id: 3 }] });

      const result = await run(
        [first, slow, last],
        { selection: "*" },
        { signal: abort.signal, cancelGraceMs: 5_000 },
      );

      expect(result.status).toBe("canceled");
      expect(Object.fromEntries(result.steps.map((s) => [s.id, s.status]))).toEqual({
        "cancel2/first": "succeeded",
        "cancel2/slow": "canceled",
        "cancel2/last": "canceled",
      });
      const rows = await materializationsOf(result.runId);
      expect(rows.get("cancel2/slow")?.status).toBe("canceled");
      expect(rows.get("cancel2/last")?.status).toBe("canceled");
    });

    it("keeps a step canceled when its compute returns after the grace period", async () => {
      const abort = new AbortController();
      const release = deferred<{ id: number }[]>();
      const finished = deferred();
      const late = asset({
        key: "cancel3/late",
        compute: async () => {
          abort.abort();
          return release.promise;
        },
      });
      const result = await run(
        [late],
        { selection: "*" },
        {
          signal: abort.signal,
          cancelGraceMs: 20,
          // the step's own bookkeeping ends with this event, whatever it records
          onEvent: (event) => {
            if (event.type === "step_finished") finished.resolve();
          },
        },
      );
      expect(result.steps[0]?.status).toBe("canceled");

      release.resolve([{ id: 1 }]);
      // a fixed step may record nothing and send no event: give it a second at most
      await Promise.race([finished.promise, new Promise((r) => setTimeout(r, 1_000))]);
      const row = must((await materializationsOf(result.runId)).get("cancel3/late"));
      // the run reported it canceled; the record must not say otherwise afterwards
      expect(row.status).toBe("canceled");
    });
  });

  describe("reapAbandonedRuns", () => {
    it("fails a running run whose process is gone, with its unfinished steps", async () => {
      const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
      const pid = child.pid;
      if (pid === undefined) throw new Error("could not spawn a process");
      await new Promise((resolve) => child.on("exit", resolve));

      const runId = `reap-${backend}-dead`;
      const aliveId = `reap-${backend}-alive`;
      await store.db
        .insertInto("strata.runs")
        .values([
          { id: runId, status: "running", selection: "*", pid, hostname: hostname() },
          {
            id: aliveId,
            status: "running",
            selection: "*",
            pid: process.pid,
            hostname: hostname(),
          },
        ])
        .execute();
      await store.db
        .insertInto("strata.materializations")
        .values([
          { id: `${runId}-done`, run_id: runId, asset_key: "reap/a", status: "succeeded" },
          { id: `${runId}-running`, run_id: runId, asset_key: "reap/b", status: "running" },
          { id: `${runId}-planned`, run_id: runId, asset_key: "reap/c", status: "planned" },
        ])
        .execute();

      const reaped = await reapAbandonedRuns(store.db);

      expect(reaped).toEqual([runId]);
      const dead = await runRow(runId);
      expect(dead.status).toBe("failed");
      expect(dead.finished_at).toBeInstanceOf(Date);
      expect(dead.error).toBe(
        `the process running it (pid ${pid}) ended without finishing the run; resume it with "strata runs resume ${runId}"`,
      );
      expect((await runRow(aliveId)).status).toBe("running");
      const steps = await store.db
        .selectFrom("strata.materializations")
        .select(["id", "status"])
        .where("run_id", "=", runId)
        .orderBy("id")
        .execute();
      expect(steps).toEqual([
        { id: `${runId}-done`, status: "succeeded" },
        { id: `${runId}-planned`, status: "canceled" },
        { id: `${runId}-running`, status: "failed" },
      ]);
      // a second pass finds nothing left to do
      expect(await reapAbandonedRuns(store.db)).toEqual([]);
    });
  });
});
