import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CostLedger, callsLostInFlight, type LedgerEntry } from "../../src/store/cost-ledger.js";
import { BACKENDS, type Backend, createTestStore, type TestStore } from "../helpers/test-store.js";

const RUN = "run-ledger";
const MATERIALIZATION = "mat-ledger";

function entry(documentId: string): LedgerEntry {
  return {
    runId: RUN,
    materializationId: MATERIALIZATION,
    assetKey: "analyses",
    partitionKey: null,
    documentId,
    model: "small",
    providerModel: "m",
    endpoint: "e",
    requestHash: `h-${documentId}`,
    status: "succeeded",
    attempts: 1,
    promptTokens: 10,
    cachedTokens: 0,
    completionTokens: 5,
    reasoningTokens: 0,
    inputPricePerMTok: "0.1",
    cachedInputPricePerMTok: "0.01",
    outputPricePerMTok: "0.4",
    latencyMs: 3,
    cacheHit: false,
    cachedFrom: null,
    error: null,
    output: `answer ${documentId}`,
  };
}

// On a Postgres server the CLI writes dispatch counts in their own relaxed commits: both ways.
interface LedgerCase {
  readonly backend: Backend;
  readonly relaxedDispatchCommit: boolean;
}
const CASES: LedgerCase[] = BACKENDS.flatMap((backend): LedgerCase[] =>
  backend === "postgres"
    ? [
        { backend, relaxedDispatchCommit: false },
        { backend, relaxedDispatchCommit: true },
      ]
    : [{ backend, relaxedDispatchCommit: false }],
);

describe.each(CASES)(
  "CostLedger on $backend (relaxed dispatch commits: $relaxedDispatchCommit)",
  ({ backend, relaxedDispatchCommit }) => {
    let store: TestStore;
    beforeEach(async () => {
      store = await createTestStore(backend);
      await sql`insert into strata.runs (id, status, selection) values (${RUN}, 'running', '*')`.execute(
        store.db,
      );
      await sql`insert into strata.materializations (id, run_id, asset_key, status)
              values (${MATERIALIZATION}, ${RUN}, 'analyses', 'running')`.execute(store.db);
    });
    afterEach(async () => {
      await store.dispose();
    });

    const state = async () => {
      const { rows } = await sql<{ dispatched: number; rows: number }>`
      select calls_dispatched::int as dispatched,
             (select count(*)::int from strata.inference_calls where run_id = r.id) as rows
        from strata.runs r where id = ${RUN}`.execute(store.db);
      return rows[0]!;
    };

    it("resolves a dispatch only once the count is committed, without a flush or a timer", async () => {
      const ledger = new CostLedger(store.db, { relaxedDispatchCommit });
      ledger.record(entry("d1"));
      ledger.record(entry("d2"));
      const sent = ledger.recordDispatch(RUN);
      expect(await state()).toEqual({ dispatched: 0, rows: 0 });
      await sent;
      expect((await state()).dispatched).toBe(1);
      // combined, the write that counted the dispatch carried the rows buffered before it
      if (!relaxedDispatchCommit) expect(await state()).toEqual({ dispatched: 1, rows: 2 });
      await ledger.flush();
      expect(await state()).toEqual({ dispatched: 1, rows: 2 });
      expect(ledger.pending).toBe(0);
    });

    it("writes a row recorded while idle at once, without waiting for a flush or a timer", async () => {
      const ledger = new CostLedger(store.db, { relaxedDispatchCommit });
      ledger.record(entry("d1"));
      // the write starts right after this turn of the event loop, not on a timer (in memory it
      // may be done by then)
      await new Promise((resolve) => setImmediate(resolve));
      expect(ledger.writesInFlight + ledger.written).toBe(1);
      await ledger.flush();
      expect(ledger.written).toBe(1);
      expect(await state()).toEqual({ dispatched: 0, rows: 1 });
    });

    it("batches what arrives while writes are in flight, never more than maxBatch rows a write", async () => {
      const ledger = new CostLedger(store.db, {
        maxBatch: 10,
        maxWritesInFlight: 1,
        relaxedDispatchCommit,
      });
      const sent: Promise<void>[] = [];
      for (let i = 0; i < 95; i++) {
        ledger.record(entry(`d${i}`));
        sent.push(ledger.recordDispatch(RUN));
      }
      await Promise.all(sent);
      await ledger.flush();
      expect(await state()).toEqual({ dispatched: 95, rows: 95 });
      // 95 rows in writes of at most 10: at least 10 writes, and far fewer than one per row
      expect(ledger.writes).toBeGreaterThanOrEqual(10);
      expect(ledger.writes).toBeLessThan(95);
      expect(await callsLostInFlight(store.db, RUN)).toBe(0);
    });

    it("resolves recordForId with each row's own id once it is written", async () => {
      const ledger = new CostLedger(store.db, { maxBatch: 4, relaxedDispatchCommit });
      const ids = new Map<string, Promise<number>>();
      const sent: Promise<void>[] = [];
      // rows asking for their id among rows that do not, in several writes, some with counts
      for (let i = 0; i < 10; i++) {
        if (i % 3 === 0) ids.set(`d${i}`, ledger.recordForId(entry(`d${i}`)));
        else ledger.record(entry(`d${i}`));
        if (i % 2 === 0) sent.push(ledger.recordDispatch(RUN));
      }
      const resolved = new Map<string, number>();
      for (const [documentId, id] of ids) resolved.set(documentId, await id);
      await Promise.all(sent);
      await ledger.flush();
      const { rows } = await sql<{ id: number; document_id: string }>`
        select id::int as id, document_id from strata.inference_calls
         where run_id = ${RUN} and document_id = any(${[...ids.keys()]}::text[])`.execute(store.db);
      expect(new Map(rows.map((r) => [r.document_id, r.id]))).toEqual(resolved);
      expect(resolved.size).toBe(4);
    });

    it("rejects recordForId when the row cannot be written, and keeps the row", async () => {
      const ledger = new CostLedger(store.db, { writeAttempts: 1, relaxedDispatchCommit });
      const orphan = { ...entry("d1"), runId: "run-never", materializationId: "mat-never" };
      await expect(ledger.recordForId(orphan)).rejects.toThrow();
      expect(ledger.pending).toBe(1);
    });

    it("counts a dispatched call without an outcome as lost in flight", async () => {
      const ledger = new CostLedger(store.db, { relaxedDispatchCommit });
      await Promise.all([ledger.recordDispatch(RUN), ledger.recordDispatch(RUN)]);
      ledger.record(entry("d1"));
      await ledger.flush();
      expect(await callsLostInFlight(store.db, RUN)).toBe(1);
    });

    it("rejects a dispatch when the database is gone, and keeps the rows", async () => {
      const gone = await createTestStore(backend);
      await gone.dispose();
      const ledger = new CostLedger(gone.db, { writeAttempts: 2, relaxedDispatchCommit });
      ledger.record(entry("d1"));
      await expect(ledger.recordDispatch(RUN)).rejects.toMatchObject({
        name: "StoreError",
        code: "db_unreachable",
      });
      await expect(ledger.flush()).rejects.toThrow();
      expect(ledger.pending).toBe(1);
      expect(ledger.written).toBe(0);
    });

    it.skipIf(relaxedDispatchCommit)(
      "rejects a dispatch it cannot write, does not count it, and keeps the rows for a later flush",
      async () => {
        const ledger = new CostLedger(store.db, { writeAttempts: 1, relaxedDispatchCommit });
        // rows of a run that does not exist yet break the foreign key: every write of them fails
        const orphan = { ...entry("d1"), runId: "run-later", materializationId: "mat-later" };
        ledger.record(orphan);
        const sent = ledger.recordDispatch(RUN);
        await expect(sent).rejects.toMatchObject({ name: "StoreError", code: "db_unreachable" });
        await expect(ledger.flush()).rejects.toThrow();
        expect(await state()).toEqual({ dispatched: 0, rows: 0 });
        expect(ledger.pending).toBe(1);

        await sql`insert into strata.runs (id, status, selection) values ('run-later', 'running', '*')`.execute(
          store.db,
        );
        await sql`insert into strata.materializations (id, run_id, asset_key, status)
              values ('mat-later', 'run-later', 'analyses', 'running')`.execute(store.db);
        await ledger.flush();
        expect(ledger.pending).toBe(0);
        const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from strata.inference_calls where run_id = 'run-later'`.execute(
          store.db,
        );
        expect(rows[0]!.n).toBe(1);
        // the rejected dispatch was never counted
        expect(await state()).toEqual({ dispatched: 0, rows: 0 });
      },
    );
  },
);
