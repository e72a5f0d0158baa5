import { parenthesized, splitSqlStatements, splitTopLevel } from "./sql-statements.js";

/** A column the migrations give a table: its name, its type as Postgres prints it, its DDL. */
export interface ExpectedColumn {
  readonly name: string;
  /** As `format_type` prints it (`timestamp with time zone`); null when not understood. */
  readonly type: string | null;
  /** The column's definition, for `alter table ... add column` when it must be recreated. */
  readonly definition: string;
}

/** A table, view or index of schema `strata` as the migrations leave it. */
export interface ExpectedObject {
  readonly name: string;
  /** The statement that creates it. */
  readonly create: string;
  /** The migration file that creates it. */
  readonly migration: string;
  /** Its place among all the statements of the migrations, for recreating in order. */
  readonly order: number;
}

/** A table and its columns. */
export interface ExpectedTable extends ExpectedObject {
  readonly columns: ReadonlyArray<ExpectedColumn>;
}

/** An index, on `table`. */
export interface ExpectedIndex extends ExpectedObject {
  readonly table: string;
}

/**
 * What schema `strata` holds after a list of migrations: its tables with their columns, its
 * views and its indexes, by unqualified name.
 *
 * Read from the migrations' SQL (`create table`, `alter table ... add / drop / rename / alter
 * column`, `create index`, `create view`, `drop ...`). An object a statement changes in a way not
 * understood here is left out, so that it is never reported as changed when it is not.
 */
export interface ExpectedSchema {
  readonly tables: ReadonlyMap<string, ExpectedTable>;
  readonly views: ReadonlyMap<string, ExpectedObject>;
  readonly indexes: ReadonlyMap<string, ExpectedIndex>;
}

const NAME = "([A-Za-z_][A-Za-z0-9_]*)";
const CREATE_TABLE = new RegExp(
  `^create (?:unlogged )?table (?:if not exists )?strata\\.${NAME} ?\\(`,
  "i",
);
const CREATE_INDEX = new RegExp(
  `^create (?:unique )?index (?:concurrently )?(?:if not exists )?${NAME} on (?:only )?strata\\.${NAME}\\b`,
  "i",
);
const CREATE_VIEW = new RegExp(
  `^create (?:or replace )?(?:temp |temporary )?view strata\\.${NAME}\\b`,
  "i",
);
const ALTER_TABLE = new RegExp(`^alter table (?:if exists )?(?:only )?strata\\.${NAME} (.*)$`, "i");
const DROP =
  /^drop (table|view|index)(?: concurrently)?(?: if exists)? (.*?)(?: cascade| restrict)?$/i;
const ALTER_INDEX_RENAME = new RegExp(
  `^alter index (?:if exists )?(?:strata\\.)?${NAME} rename to ${NAME}$`,
  "i",
);
const TABLE_CONSTRAINT = /^(constraint|primary key|unique|check|foreign key|exclude|like)\b/i;
// Statements that change no table, view or index of the schema.
const HARMLESS =
  /^(create schema|create (or replace )?function|create extension|comment on|grant|revoke|insert|update|delete|select|set|create sequence|alter sequence)\b/i;

/**
 * Reads what `files` (in order) leave in schema `strata`.
 *
 * @example
 * const expected = expectedSchema(await readMigrations());
 * expected.tables.get("runs")?.columns.map((c) => c.name); // ["id", "status", ...]
 */
export function expectedSchema(
  files: ReadonlyArray<{ readonly name: string; readonly sql: string }>,
): ExpectedSchema {
  const tables = new Map<string, ExpectedTable>();
  const views = new Map<string, ExpectedObject>();
  const indexes = new Map<string, ExpectedIndex>();
  let order = 0;
  for (const file of files) {
    for (const statement of splitSqlStatements(file.sql)) {
      order++;
      const at = { create: statement, migration: file.name, order };
      const understood = firstMatch(statement, [
        [
          CREATE_TABLE,
          (m) => {
            const name = m[1]!.toLowerCase();
            const body = parenthesized(statement, m[0].length - 1);
            const after = body === null ? "?" : statement.slice(body.end + 1).trim();
            // `partition by`, `inherits`, ...: not a plain table, leave it unchecked
            if (body === null || (after !== "" && !/^with(out)? /i.test(after))) {
              forget(name, tables, views);
              return;
            }
            const columns = splitTopLevel(body.inner)
              .filter((item) => !TABLE_CONSTRAINT.test(item))
              .map(columnOf);
            tables.set(name, { name, columns, ...at });
          },
        ],
        [
          CREATE_INDEX,
          (m) => {
            const name = m[1]!.toLowerCase();
            indexes.set(name, { name, table: m[2]!.toLowerCase(), ...at });
          },
        ],
        [
          CREATE_VIEW,
          (m) => {
            const name = m[1]!.toLowerCase();
            views.set(name, { name, ...at });
          },
        ],
        [ALTER_TABLE, (m) => alterTable(m[1]!.toLowerCase(), m[2]!, tables, views, indexes)],
        [
          DROP,
          (m) => {
            const kind = m[1]!.toLowerCase();
            for (const target of splitTopLevel(m[2]!)) {
              const name = target.replace(/^strata\./i, "").toLowerCase();
              if (kind === "index") indexes.delete(name);
              else forget(name, tables, views);
              if (kind !== "table") continue;
              for (const [key, index] of indexes) if (index.table === name) indexes.delete(key);
            }
          },
        ],
        [
          ALTER_INDEX_RENAME,
          (m) => {
            const index = indexes.get(m[1]!.toLowerCase());
            indexes.delete(m[1]!.toLowerCase());
            const name = m[2]!.toLowerCase();
            if (index !== undefined) indexes.set(name, { ...index, name });
          },
        ],
      ]);
      if (!understood && !HARMLESS.test(statement)) {
        // not understood: whatever it names is no longer checked
        for (const named of statement.matchAll(/\bstrata\.([A-Za-z_][A-Za-z0-9_]*)/gi)) {
          forget(named[1]!.toLowerCase(), tables, views);
        }
      }
    }
  }
  return { tables, views, indexes };
}

/** Runs the handler of the first pattern that matches `text`; false when none does. */
function firstMatch(
  text: string,
  rules: ReadonlyArray<readonly [RegExp, (match: RegExpExecArray) => void]>,
): boolean {
  for (const [pattern, handle] of rules) {
    const match = pattern.exec(text);
    if (match !== null) {
      handle(match);
      return true;
    }
  }
  return false;
}

function forget(
  name: string,
  tables: Map<string, ExpectedTable>,
  views: Map<string, ExpectedObject>,
): void {
  tables.delete(name);
  views.delete(name);
}

function alterTable(
  tableName: string,
  clauses: string,
  tables: Map<string, ExpectedTable>,
  views: Map<string, ExpectedObject>,
  indexes: Map<string, ExpectedIndex>,
): void {
  const table = tables.get(tableName);
  if (table === undefined) return;
  let columns = [...table.columns];
  let name = tableName;
  for (const clause of splitTopLevel(clauses)) {
    if (/^(add|drop) (constraint|primary key|unique|check|foreign key|exclude)\b/i.test(clause)) {
      continue; // constraints: no column changes
    }
    const understood = firstMatch(clause, [
      [
        new RegExp(`^rename to ${NAME}$`, "i"),
        (m) => {
          name = m[1]!.toLowerCase();
        },
      ],
      [
        new RegExp(`^rename (?:column )?${NAME} to ${NAME}$`, "i"),
        (m) => {
          const from = m[1]!.toLowerCase();
          const to = m[2]!.toLowerCase();
          columns = columns.map((c) =>
            c.name === from
              ? { ...c, name: to, definition: `${to}${c.definition.slice(from.length)}` }
              : c,
          );
        },
      ],
      [
        /^add (?:column )?(?:if not exists )?(.*)$/i,
        (m) => {
          const column = columnOf(m[1]!);
          columns = [...columns.filter((c) => c.name !== column.name), column];
        },
      ],
      [
        new RegExp(`^drop (?:column )?(?:if exists )?${NAME}(?: cascade| restrict)?$`, "i"),
        (m) => {
          const dropped = m[1]!.toLowerCase();
          columns = columns.filter((c) => c.name !== dropped);
        },
      ],
      [
        new RegExp(`^alter (?:column )?${NAME} (?:set data )?type (.*?)(?: using .*)?$`, "i"),
        (m) => {
          const altered = m[1]!.toLowerCase();
          const definition = `${altered} ${m[2]!}`;
          columns = columns.map((c) =>
            c.name === altered ? { name: altered, type: normalizeType(m[2]!), definition } : c,
          );
        },
      ],
      [/^alter (?:column )?\w+ (set|drop) /i, () => {}],
    ]);
    if (!understood) {
      // not understood: stop checking this table rather than report a change that is not one
      forget(tableName, tables, views);
      return;
    }
  }
  tables.delete(tableName);
  tables.set(name, { ...table, name, columns });
  if (name !== tableName) {
    for (const [key, index] of indexes) {
      if (index.table === tableName) indexes.set(key, { ...index, table: name });
    }
  }
}

function columnOf(item: string): ExpectedColumn {
  const m = new RegExp(`^"?${NAME}"?\\s+(.*)$`, "s").exec(item);
  if (m === null) return { name: item.toLowerCase(), type: null, definition: item };
  return { name: m[1]!.toLowerCase(), type: normalizeType(m[2]!), definition: item };
}

const TYPE_ALIASES: ReadonlyMap<string, string> = new Map([
  ["int", "integer"],
  ["int4", "integer"],
  ["integer", "integer"],
  ["serial", "integer"],
  ["int8", "bigint"],
  ["bigint", "bigint"],
  ["bigserial", "bigint"],
  ["int2", "smallint"],
  ["smallint", "smallint"],
  ["bool", "boolean"],
  ["boolean", "boolean"],
  ["text", "text"],
  ["jsonb", "jsonb"],
  ["json", "json"],
  ["numeric", "numeric"],
  ["decimal", "numeric"],
  ["date", "date"],
  ["uuid", "uuid"],
  ["bytea", "bytea"],
  ["real", "real"],
  ["float4", "real"],
  ["float8", "double precision"],
  ["double precision", "double precision"],
  ["timestamptz", "timestamp with time zone"],
  ["timestamp with time zone", "timestamp with time zone"],
  ["timestamp", "timestamp without time zone"],
  ["timestamp without time zone", "timestamp without time zone"],
  ["varchar", "character varying"],
  ["character varying", "character varying"],
  ["interval", "interval"],
]);

/** A column's type as `format_type` prints it, or null for one not understood here. */
function normalizeType(definition: string): string | null {
  const text = definition
    .toLowerCase()
    .split(
      /\s+(?=(?:not|null|default|primary|references|check|unique|generated|constraint|collate)\b)/,
    )[0]!
    .trim();
  const m = /^([a-z][a-z0-9 ]*?)\s*(\(\s*\d+(?:\s*,\s*\d+)?\s*\))?\s*((?:\[\])*)$/.exec(text);
  if (m === null) return null;
  const base = TYPE_ALIASES.get(m[1]!.replace(/\s+/g, " "));
  if (base === undefined) return null;
  // format_type writes a timestamp's precision inside its name: leave those unchecked
  if (m[2] !== undefined && base.startsWith("timestamp")) return null;
  return `${base}${m[2]?.replace(/\s+/g, "") ?? ""}${m[3] ?? ""}`;
}
