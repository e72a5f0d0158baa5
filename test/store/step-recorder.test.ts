import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StrataError } from "../../src/errors.js";
import { recordRunEnd, recordRunStart } from "../../src/store/run-records.js";
import { StepRecordError, StepRecorder } from "../../src/store/step-recorder.js";
import { registerSecret } from "../../src/util/redactor.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

const RUN = "run-1";
const STEPS = ["m-a", "m-b", "m-c", "m-d"];

describe.each(BACKENDS)("StepRecorder on %s", (backend) => {
  let store: TestStore;
  beforeEach(async () => {
    store = await createTestStore(backend);
    await recordRunStart(
      store.db,
      {
        id: RUN,
        selection: "*",
        partitions: [],
        options: {},
        maxCostUsd: null,
        resumedFrom: null,
      },
      STEPS.map((id) => ({
        id,
        assetKey: id,
        partitionKey: null,
        codeVersion: null,
        depKeys: [],
      })),
    );
  });
  afterEach(async () => {
    await store.dispose();
  });

  const states = async () =>
    Object.fromEntries(
      (
        await store.db
          .selectFrom("strata.materializations")
          .select([
            "id",
            "status",
            "started_at",
            "finished_at",
            "data_version",
            "row_count",
            "storage_path",
            "metadata",
            "error",
          ])
          .where("run_id", "=", RUN)
          .execute()
      ).map((r) => [r.id, r]),
    );
  const inputs = async () =>
    (
      await store.db
        .selectFrom("strata.materialization_inputs")
        .select(["materialization_id", "input_materialization_id"])
        .orderBy("materialization_id")
        .orderBy("input_materialization_id")
        .execute()
    ).map((r) => `${r.materialization_id}<-${r.input_materialization_id}`);

  const success = (startedAt: Date, inputIds: string[] = []) => ({
    dataVersion: "v1",
    rowCount: 3,
    storagePath: "/storage/a.arrow",
    metadata: { note: "hello" },
    inputIds,
    startedAt,
  });

  it("writes a step that started and succeeded within one batch once, with its provenance", async () => {
    const recorder = new StepRecorder(store.db);
    const started = new Date("2026-01-01T00:00:00.000Z");
    const finished = new Date("2026-01-01T00:00:01.500Z");
    recorder.started("m-a", started);
    recorder.succeeded("m-a", success(started), finished);
    recorder.started("m-b", finished);
    recorder.succeeded("m-b", success(finished, ["m-a"]), finished);
    await recorder.flush();

    const rows = await states();
    expect(rows["m-a"]).toMatchObject({
      status: "succeeded",
      data_version: "v1",
      row_count: 3,
      storage_path: "/storage/a.arrow",
      metadata: { note: "hello" },
      error: null,
    });
    expect(new Date(rows["m-a"]!.started_at!).toISOString()).toBe(started.toISOString());
    expect(new Date(rows["m-a"]!.finished_at!).toISOString()).toBe(finished.toISOString());
    expect(await inputs()).toEqual(["m-b<-m-a"]);
    expect(rows["m-c"]?.status).toBe("planned");
  });

  it("keeps the start time of a step whose failure replaces its running state", async () => {
    const recorder = new StepRecorder(store.db);
    const started = new Date("2026-01-01T00:00:00.000Z");
    recorder.started("m-a", started);
    await recorder.flush();
    expect((await states())["m-a"]?.status).toBe("running");

    recorder.started("m-b", started);
    recorder.ended("m-b", "failed", "boom", new Date("2026-01-01T00:00:02.000Z"), { tried: 2 });
    recorder.ended("m-a", "canceled", "the run was canceled", new Date());
    await recorder.flush();
    const rows = await states();
    expect(rows["m-b"]).toMatchObject({ status: "failed", error: "boom", metadata: { tried: 2 } });
    expect(new Date(rows["m-b"]!.started_at!).toISOString()).toBe(started.toISOString());
    expect(rows["m-a"]).toMatchObject({ status: "canceled", error: "the run was canceled" });
    expect(new Date(rows["m-a"]!.started_at!).toISOString()).toBe(started.toISOString());
  });

  it("holds the states of one interval for one batch, and flush writes them at once", async () => {
    const recorder = new StepRecorder(store.db, { intervalMs: 60_000 });
    recorder.started("m-a", new Date());
    await recorder.flush();
    // the first batch went out at once; the next may not start before the interval is over
    recorder.succeeded("m-a", success(new Date()), new Date());
    recorder.started("m-b", new Date());
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await states())["m-a"]?.status).toBe("running");
    expect((await states())["m-b"]?.status).toBe("planned");
    await recorder.flush();
    expect((await states())["m-a"]?.status).toBe("succeeded");
    expect((await states())["m-b"]?.status).toBe("running");
  });

  it("stops at a batch it cannot write, names what was lost and keeps what was written", async () => {
    const recorder = new StepRecorder(store.db, { writeAttempts: 2 });
    const at = new Date();
    recorder.succeeded("m-a", success(at), at);
    await recorder.flush();
    // provenance pointing at a materialization that does not exist breaks the batch's
    // transaction: neither state of it may be written
    recorder.succeeded("m-b", success(at, ["no-such-materialization"]), at);
    recorder.started("m-c", at);
    const error = await recorder.flush().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StepRecordError);
    expect(error).toBeInstanceOf(StrataError);
    expect((error as StepRecordError).code).toBe("record_failed");
    expect([...(error as StepRecordError).materializationIds].sort()).toEqual(["m-b", "m-c"]);
    expect((error as Error).message).toMatch(/could not record 2 step states in the database/);
    expect(recorder.failure).toBe(error);

    // once stopped, nothing more is written and flush keeps failing
    recorder.started("m-d", at);
    await expect(recorder.flush()).rejects.toBe(error);
    expect([...(error as StepRecordError).materializationIds].sort()).toEqual([
      "m-b",
      "m-c",
      "m-d",
    ]);
    const rows = await states();
    expect(rows["m-a"]?.status).toBe("succeeded");
    expect(rows["m-b"]?.status).toBe("planned");
    expect(rows["m-c"]?.status).toBe("planned");
    expect(rows["m-d"]?.status).toBe("planned");
    expect(await inputs()).toEqual([]);
  });

  it("records a step and a run whose error quotes NUL, lone surrogates or a secret", async () => {
    const secret = `sk-step-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    registerSecret(secret);
    const recorder = new StepRecorder(store.db);
    const at = new Date();
    // what an endpoint answered, quoted in the step's error and in the error's stack
    const error = `document "d1": 400 bad \u0000 input \ud800 for key ${secret}`;
    recorder.ended("m-a", "failed", error, at, { errorStack: `Error: ${error}\n    at x` });
    recorder.ended("m-b", "skipped", "upstream failed", at, { ["k\u0000"]: "v" });
    await recorder.flush();
    await recordRunEnd(store.db, RUN, "failed", `1 step failed (first: "m-a": ${error})`);

    const rows = await states();
    const stored = 'document "d1": 400 bad \ufffd input \ufffd for key [redacted]';
    expect(rows["m-a"]).toMatchObject({ status: "failed", error: stored });
    expect(rows["m-a"]!.metadata).toEqual({ errorStack: `Error: ${stored}\n    at x` });
    expect(rows["m-b"]).toMatchObject({ status: "skipped", metadata: { "k\ufffd": "v" } });
    const run = await store.db
      .selectFrom("strata.runs")
      .select("error")
      .where("id", "=", RUN)
      .executeTakeFirstOrThrow();
    expect(run.error).toBe(`1 step failed (first: "m-a": ${stored})`);
  });
});
