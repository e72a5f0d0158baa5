import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";

/** A table or view in schema `strata` as the catalog shows it, with the role's rights on it. */
export interface InspectedRelation {
  readonly name: string;
  readonly kind: "table" | "view" | "other";
  /** Column name → type as `format_type` prints it. */
  readonly columns: ReadonlyMap<string, string>;
  readonly canSelect: boolean;
  /** INSERT, UPDATE and DELETE all granted. */
  readonly canWrite: boolean;
}

/** What schema `strata` holds and what the connected role may do with it, in one look. */
export interface SchemaInspection {
  readonly role: string;
  readonly database: string;
  readonly schemaExists: boolean;
  readonly createOnDatabase: boolean;
  readonly usageOnSchema: boolean;
  readonly createOnSchema: boolean;
  readonly relations: ReadonlyMap<string, InspectedRelation>;
  readonly indexes: ReadonlySet<string>;
}

interface InspectionRow {
  role: string;
  database: string;
  schema_exists: boolean;
  create_on_database: boolean;
  usage_on_schema: boolean;
  create_on_schema: boolean;
  relations: Array<{ n: string; k: string; s: boolean; w: boolean; c: Array<[string, string]> }>;
  indexes: string[];
}

/**
 * Reads schema `strata`'s tables, views, columns and indexes and the connected role's rights in
 * one catalog query: it runs when every command opens the store, so it stays one round trip.
 * The catalog is readable without any right on the schema, so this works for any role.
 *
 * @example
 * const seen = await inspectSchema(store.db);
 * seen.relations.get("runs")?.columns.get("status"); // "text"
 */
export async function inspectSchema(db: Kysely<Database>): Promise<SchemaInspection> {
  const result = await sql<InspectionRow>`
    select current_user::text as role,
           current_database()::text as database,
           n.oid is not null as schema_exists,
           has_database_privilege(current_database(), 'CREATE') as create_on_database,
           coalesce(has_schema_privilege(n.oid, 'USAGE'), false) as usage_on_schema,
           coalesce(has_schema_privilege(n.oid, 'CREATE'), false) as create_on_schema,
           coalesce((
             select json_agg(json_build_object(
                      'n', c.relname,
                      'k', c.relkind,
                      's', has_table_privilege(c.oid, 'SELECT'),
                      'w', has_table_privilege(c.oid, 'INSERT')
                           and has_table_privilege(c.oid, 'UPDATE')
                           and has_table_privilege(c.oid, 'DELETE'),
                      'c', coalesce((
                             select json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod)))
                               from pg_attribute a
                              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                           ), '[]'::json)))
               from pg_class c
              where c.relnamespace = n.oid and c.relkind in ('r', 'p', 'v', 'm', 'f')
           ), '[]'::json) as relations,
           coalesce((
             select json_agg(i.relname)
               from pg_class i
              where i.relnamespace = n.oid and i.relkind in ('i', 'I')
           ), '[]'::json) as indexes
      from (select 1) as one
      left join pg_namespace n on n.nspname = 'strata'`.execute(db);
  const row = result.rows[0]!;
  const relations = new Map<string, InspectedRelation>();
  for (const r of parsed(row.relations)) {
    relations.set(r.n, {
      name: r.n,
      kind: r.k === "r" || r.k === "p" ? "table" : r.k === "v" ? "view" : "other",
      columns: new Map(r.c),
      canSelect: r.s,
      canWrite: r.w,
    });
  }
  return {
    role: row.role,
    database: row.database,
    schemaExists: row.schema_exists,
    createOnDatabase: row.create_on_database,
    usageOnSchema: row.usage_on_schema,
    createOnSchema: row.create_on_schema,
    relations,
    indexes: new Set(parsed(row.indexes)),
  };
}

/** json columns arrive parsed from pg and as text from some drivers. */
function parsed<T>(value: T | string): T {
  return typeof value === "string" ? (JSON.parse(value) as T) : value;
}
