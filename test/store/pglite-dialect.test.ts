import { setTimeout as sleep } from "node:timers/promises";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestStore, type TestStore } from "../helpers/test-store.js";

describe("PgliteDialect", () => {
  let store: TestStore;
  beforeEach(async () => {
    store = await createTestStore("pglite");
    await sql`create table public.items (id int primary key, label text)`.execute(store.db);
  });
  afterEach(() => store.dispose());

  const count = async () =>
    (await sql<{ n: number }>`select count(*)::int as n from public.items`.execute(store.db))
      .rows[0]?.n;

  it("never lets a concurrent query see another transaction's uncommitted writes", async () => {
    const seen: number[] = [];
    const writer = store.db
      .transaction()
      .execute(async (trx) => {
        await sql`insert into public.items values (1, 'uncommitted')`.execute(trx);
        await sleep(50);
        throw new Error("roll back");
      })
      .catch(() => "rolled back");
    const readers = Promise.all(
      [0, 10, 20, 30].map(async (delay) => {
        await sleep(delay);
        seen.push((await count()) ?? -1);
      }),
    );
    expect(await writer).toBe("rolled back");
    await readers;
    expect(seen).toEqual([0, 0, 0, 0]);
    expect(await count()).toBe(0);
  });

  it("keeps two concurrent transactions apart: one commits, the other rolls back", async () => {
    const a = store.db.transaction().execute(async (trx) => {
      await sql`insert into public.items values (1, 'a')`.execute(trx);
      await sleep(20);
      const inside = await sql<{ n: number }>`select count(*)::int as n from public.items`.execute(
        trx,
      );
      return inside.rows[0]?.n;
    });
    const b = store.db
      .transaction()
      .execute(async (trx) => {
        await sql`insert into public.items values (2, 'b')`.execute(trx);
        const inside = await sql<{
          n: number;
        }>`select count(*)::int as n from public.items`.execute(trx);
        if (inside.rows[0]?.n !== 2) throw new Error(`b saw ${inside.rows[0]?.n} rows`);
        throw new Error("b rolls back");
      })
      .catch((e: Error) => e.message);
    // a sees only its own row; b runs after a committed, sees both, then rolls back
    expect(await a).toBe(1);
    expect(await b).toBe("b rolls back");
    const labels = await sql<{ label: string }>`select label from public.items`.execute(store.db);
    expect(labels.rows.map((r) => r.label)).toEqual(["a"]);
  });

  it("runs several statements in one query without parameters", async () => {
    await sql
      .raw("insert into public.items values (1, 'x'); insert into public.items values (2, 'y')")
      .execute(store.db);
    expect(await count()).toBe(2);
  });

  it("returns bigint as numbers and numeric as exact strings", async () => {
    const row = (
      await sql<{
        big: number;
        money: string;
      }>`select ${"9007199254740991"}::bigint as big, 0.1::numeric + 0.2::numeric as money`.execute(
        store.db,
      )
    ).rows[0];
    expect(row).toEqual({ big: 9007199254740991, money: "0.3" });
  });
});
