import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CostLedger, insertLedgerRows, type LedgerEntry } from "../../src/store/cost-ledger.js";
import { callsLostInFlight, findCachedAnswers } from "../../src/store/ledger-queries.js";
import { registerSecret } from "../../src/util/redactor.js";
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

    it("gives rows their ids in the order they were recorded, also when an earlier write is slower", async () => {
      const ledger = new CostLedger(store.db, { maxBatch: 1, relaxedDispatchCommit });
      // a row with 8 MB of answer takes the database far longer to write than the small rows
      // recorded after it, whose writes would overtake it if they ran beside it
      ledger.record({ ...entry("big"), output: "x".repeat(8_000_000) });
      await new Promise((resolve) => setImmediate(resolve));
      for (let i = 0; i < 5; i++) ledger.record(entry(`small-${i}`));
      await ledger.flush();
      const { rows } = await sql<{ document_id: string }>`
        select document_id from strata.inference_calls where run_id = ${RUN} order by id`.execute(
        store.db,
      );
      expect(rows.map((r) => r.document_id)).toEqual([
        "big",
        ...Array.from({ length: 5 }, (_, i) => `small-${i}`),
      ]);
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

    /** The run's ledger rows by document id. */
    const ledgerRows = async () => {
      const { rows } = await sql<{
        document_id: string;
        status: string;
        prompt_tokens: number;
        completion_tokens: number;
        error: string | null;
        output: string | null;
      }>`
      select document_id, status, prompt_tokens::int as prompt_tokens,
             completion_tokens::int as completion_tokens, error, output
        from strata.inference_calls where run_id = ${RUN} order by id`.execute(store.db);
      return rows;
    };

    it("stores answers holding NUL, lone surrogates or megabytes losslessly and answers with them", async () => {
      const answers: Record<string, string> = {
        nul: "before\u0000after",
        "lone-high": "cut emoji \ud83d",
        "lone-low": "\udc00 at the start",
        mark: '\uffff"not json',
        "mark-json": `\uffff${JSON.stringify("looks escaped")}`,
        plain: "a plain answer with \\u0000 written out",
        huge: `${"x".repeat(3_000_000)}\u0000${"é".repeat(1_000_000)}`,
      };
      const ledger = new CostLedger(store.db, { relaxedDispatchCommit });
      for (const [id, output] of Object.entries(answers)) {
        ledger.record({ ...entry(id), output, error: null });
      }
      // an error message quoting such text is stored too (lossy: messages are for people)
      ledger.record({
        ...entry("error-nul"),
        status: "failed",
        output: null,
        error: "400 bad \u0000 request \ud800",
      });
      await ledger.flush();

      const rows = await ledgerRows();
      expect(rows).toHaveLength(Object.keys(answers).length + 1);
      expect(rows.every((r) => r.prompt_tokens === 10 && r.completion_tokens === 5)).toBe(true);
      // what a plain answer looks like in SQL is the answer itself
      expect(rows.find((r) => r.document_id === "plain")!.output).toBe(answers.plain);
      expect(rows.find((r) => r.document_id === "error-nul")!.error).toBe(
        "400 bad \ufffd request \ufffd",
      );

      const cached = await findCachedAnswers(
        store.db,
        Object.keys(answers).map((id) => `h-${id}`),
      );
      for (const [id, output] of Object.entries(answers)) {
        expect(cached.get(`h-${id}`)?.output === output, id).toBe(true);
      }
    });

    it("writes every other row of a batch the database refuses a row of, that one as a failed call with its tokens", async () => {
      const ledger = new CostLedger(store.db, { relaxedDispatchCommit });
      const sent = [ledger.recordDispatch(RUN), ledger.recordDispatch(RUN)];
      ledger.record(entry("good-1"));
      // a document id is the user's: Postgres refuses a NUL in it
      ledger.record({
        ...entry("bad\u0000id"),
        requestHash: "h-bad",
        promptTokens: 40,
        completionTokens: 9,
      });
      ledger.record(entry("good-2"));
      ledger.recordDispatch(RUN);
      await Promise.all(sent);
      await ledger.flush();

      const rows = await ledgerRows();
      expect(rows.map((r) => [r.document_id, r.status])).toEqual([
        ["good-1", "succeeded"],
        ["bad\ufffdid", "failed"],
        ["good-2", "succeeded"],
      ]);
      const bad = rows[1]!;
      expect(bad).toMatchObject({ prompt_tokens: 40, completion_tokens: 9, output: null });
      expect(bad.error).toMatch(/the ledger refused this call's row/);
      expect((await state()).dispatched).toBe(3);
      // the refused row answers nothing later
      expect((await findCachedAnswers(store.db, ["h-bad"])).size).toBe(0);
      expect((await findCachedAnswers(store.db, ["h-good-1", "h-good-2"])).size).toBe(2);
    });

    it("never answers a request from a row without text, also one an older version wrote", async () => {
      await insertLedgerRows(store.db, [
        { ...entry("empty"), output: "" },
        { ...entry("null"), output: null },
        { ...entry("failed"), status: "failed" },
        entry("answered"),
      ]);
      const cached = await findCachedAnswers(store.db, [
        "h-empty",
        "h-null",
        "h-failed",
        "h-answered",
      ]);
      expect([...cached.keys()]).toEqual(["h-answered"]);
    });

    it("stores no registered secret in an error or an answer", async () => {
      const secret = `sk-ledger-${Math.random().toString(36).slice(2)}-${Date.now()}`;
      registerSecret(secret);
      const ledger = new CostLedger(store.db, { relaxedDispatchCommit });
      ledger.record({
        ...entry("echo"),
        status: "failed",
        output: `you sent ${secret}`,
        error: `401 Incorrect API key provided: ${secret} (Authorization: Bearer ${secret})`,
      });
      await ledger.flush();
      const [row] = await ledgerRows();
      expect(row!.error).toBe(
        "401 Incorrect API key provided: [redacted] (Authorization: Bearer [redacted])",
      );
      expect(row!.output).toBe("you sent [redacted]");
    });
  },
);
