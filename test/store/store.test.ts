import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { openPostgresStore } from "../../src/store/store.js";
import { BACKENDS, createTestStore, type TestStore } from "../helpers/test-store.js";

describe("openPostgresStore", () => {
  it("names host and port of an unreachable server and never the password", async () => {
    const error = await openPostgresStore("postgres://nobody:secret@127.0.0.1:1/x").catch((e) => e);
    expect(error).toMatchObject({ code: "db_unreachable" });
    expect(error.message).toMatch(/^cannot reach Postgres at 127\.0\.0\.1:1: /);
    expect(`${error.message}\n${error.stack}\n${error.cause?.stack}`).not.toContain("secret");
  });

  it("rejects a URL that is not a postgres URL without echoing it", async () => {
    const error = await openPostgresStore("mysql://root:hunter2@db/x").catch((e) => e);
    expect(error).toMatchObject({ code: "db_unreachable" });
    expect(error.message).toContain('protocol "mysql:"');
    expect(error.message).not.toContain("hunter2");
  });
});

describe.each(BACKENDS)("store on %s", (backend) => {
  let store: TestStore;
  afterEach(() => store.dispose());

  it("computes a ledger row's cost exactly from tokens and snapshotted prices", async () => {
    store = await createTestStore(backend);
    await store.db
      .insertInto("strata.runs")
      .values({ id: "r1", status: "running", selection: "*" })
      .execute();
    await store.db
      .insertInto("strata.inference_calls")
      .values({
        run_id: "r1",
        asset_key: "analyses",
        document_id: "d1",
        model: "small",
        provider_model: "qwen3-8b",
        endpoint: "local",
        request_hash: "h",
        status: "succeeded",
        prompt_tokens: 1_000_003,
        cached_tokens: 1_000_000,
        completion_tokens: 7,
        input_price_per_mtok: "0.10",
        cached_input_price_per_mtok: "0.01",
        output_price_per_mtok: "0.40",
      })
      .execute();
    const row = await store.db
      .selectFrom("strata.cost_by_model")
      .selectAll()
      .executeTakeFirstOrThrow();
    // 3 × 0.10 + 1,000,000 × 0.01 + 7 × 0.40, per million tokens
    expect(Number(row.cost_usd)).toBe(0.0100031);
    expect(row.cost_usd).toMatch(/^0\.0100031/);
    expect(row).toMatchObject({
      model: "small",
      calls: 1,
      cache_hits: 0,
      prompt_tokens: 1_000_003,
    });
    const sum = await sql<{
      s: string;
    }>`select sum(cost_usd)::text as s from strata.inference_calls`.execute(store.db);
    expect(sum.rows[0]?.s).toMatch(/^0\.0100031/);
  });

  it("refuses a ledger row with more cached than prompt tokens", async () => {
    store = await createTestStore(backend);
    await store.db
      .insertInto("strata.runs")
      .values({ id: "r1", status: "running", selection: "*" })
      .execute();
    await expect(
      store.db
        .insertInto("strata.inference_calls")
        .values({
          run_id: "r1",
          asset_key: "a",
          document_id: "d",
          model: "m",
          provider_model: "m",
          endpoint: "e",
          request_hash: "h",
          status: "succeeded",
          prompt_tokens: 1,
          cached_tokens: 2,
        })
        .execute(),
    ).rejects.toThrow(/check constraint/);
  });
});
