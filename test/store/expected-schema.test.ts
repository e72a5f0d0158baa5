import { describe, expect, it } from "vitest";
import { expectedSchema } from "../../src/store/expected-schema.js";
import { readMigrations } from "../../src/store/migrator.js";
import { splitSqlStatements } from "../../src/store/sql-statements.js";

const migration = (name: string, sql: string) => ({ name, sql });

/** The columns of `table` as `name:type`. */
function columnsOf(schema: ReturnType<typeof expectedSchema>, table: string): string[] {
  return (schema.tables.get(table)?.columns ?? []).map((c) => `${c.name}:${c.type}`);
}

describe("splitSqlStatements", () => {
  it("splits at semicolons outside strings, quoted names, dollar quotes and comments", () => {
    const script = `
      -- a comment; with a semicolon
      create table strata.a (x text default ';', "y;z" int); /* block; comment */
      create function f() returns int as $body$ select 1; $body$ language sql;
      insert into strata.a values ('it''s; fine');
    `;
    expect(splitSqlStatements(script)).toEqual([
      `create table strata.a (x text default ';', "y;z" int)`,
      "create function f() returns int as $body$ select 1; $body$ language sql",
      "insert into strata.a values ('it''s; fine')",
    ]);
  });
});

describe("expectedSchema", () => {
  it("reads the shipped migrations' tables, columns with their types, views and indexes", async () => {
    const schema = expectedSchema(await readMigrations());
    expect([...schema.tables.keys()]).toEqual(
      expect.arrayContaining([
        "runs",
        "materializations",
        "materialization_inputs",
        "assets",
        "asset_deps",
        "catalog_state",
        "inference_calls",
      ]),
    );
    expect(columnsOf(schema, "runs").slice(0, 5)).toEqual([
      "id:text",
      "status:text",
      "selection:text",
      "started_at:timestamp with time zone",
      "finished_at:timestamp with time zone",
    ]);
    expect(columnsOf(schema, "inference_calls")).toEqual(
      expect.arrayContaining([
        "id:bigint",
        "cost_usd:numeric",
        "cache_hit:boolean",
        "attempts:integer",
      ]),
    );
    expect([...schema.views.keys()]).toEqual(
      expect.arrayContaining(["cost_by_asset", "cost_by_model", "cost_by_run", "cost_by_day"]),
    );
    expect(schema.indexes.get("inference_calls_cache_idx")?.table).toBe("inference_calls");
    expect(schema.tables.get("runs")?.migration).toBe("0001_init.sql");
  });

  it("follows later migrations that add, drop, rename and retype columns", () => {
    const schema = expectedSchema([
      migration(
        "0001_a.sql",
        "create table strata.t (id text primary key, a int not null, b text, check (a > 0));",
      ),
      migration(
        "0002_b.sql",
        `alter table strata.t add column c numeric(12, 4) default 0, drop column b;
         alter table strata.t rename column a to n;
         alter table strata.t alter column n type bigint using n::bigint;
         alter table strata.t alter column c set not null, add constraint c_positive check (c >= 0);
         alter table if exists strata.t add column if not exists d timestamptz;`,
      ),
    ]);
    expect(columnsOf(schema, "t")).toEqual([
      "id:text",
      "n:bigint",
      "c:numeric(12,4)",
      "d:timestamp with time zone",
    ]);
    expect(schema.tables.get("t")?.columns.find((c) => c.name === "c")?.definition).toBe(
      "c numeric(12, 4) default 0",
    );
  });

  it("follows renamed and dropped tables, views and indexes", () => {
    const schema = expectedSchema([
      migration(
        "0001_a.sql",
        `create table strata.t (id text);
         create table strata.gone (id text);
         create index t_idx on strata.t (id);
         create index gone_idx on strata.gone (id);
         create view strata.v as select 1 as one;
         create view strata.w as select 2 as two;`,
      ),
      migration(
        "0002_b.sql",
        `alter table strata.t rename to u;
         alter index strata.t_idx rename to u_idx;
         drop table strata.gone cascade;
         drop view if exists strata.w;
         create or replace view strata.v as select 1 as one, 2 as two;`,
      ),
    ]);
    expect([...schema.tables.keys()]).toEqual(["u"]);
    expect([...schema.indexes.values()].map((i) => `${i.name}@${i.table}`)).toEqual(["u_idx@u"]);
    expect([...schema.views.keys()]).toEqual(["v"]);
    expect(schema.views.get("v")?.create).toBe(
      "create or replace view strata.v as select 1 as one, 2 as two",
    );
  });

  it("stops checking what a statement changes in a way it does not understand", () => {
    const schema = expectedSchema([
      migration(
        "0001_a.sql",
        `create table strata.t (id text);
         create table strata.kept (id text);
         create table strata.parted (id text) partition by list (id);`,
      ),
      migration(
        "0002_b.sql",
        `do $$ begin execute 'alter table strata.t add column x int'; end $$;
         alter table strata.kept owner to someone_else;
         grant select on strata.kept to public;
         comment on table strata.kept is 'kept';`,
      ),
    ]);
    expect(schema.tables.has("t")).toBe(false);
    expect(schema.tables.has("kept")).toBe(false);
    expect(schema.tables.has("parted")).toBe(false);
  });

  it("leaves a column of a type it does not know unchecked, but keeps its definition", () => {
    const schema = expectedSchema([
      migration("0001_a.sql", "create table strata.t (p point, ts timestamptz(3), tags text[]);"),
    ]);
    expect(columnsOf(schema, "t")).toEqual(["p:null", "ts:null", "tags:text[]"]);
  });
});
