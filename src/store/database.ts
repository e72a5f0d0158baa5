import type { ColumnType, Generated, Kysely } from "kysely";

/** A `timestamptz` column: read as a Date, written as a Date or an ISO string. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
/** A timestamp the database fills in when it is left out. */
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;
/** A `numeric` column: exact decimals travel as strings, never floats. */
type Numeric = ColumnType<string, string | number, string | number>;
type DefaultNumeric = ColumnType<string, string | number | undefined, string | number>;
/** A `bigint` counter, read as a JS number (token counts stay far below 2^53). */
type Counter = ColumnType<number, number | undefined, number>;
type Json<T> = ColumnType<T, string, string>;
type DefaultJson<T> = ColumnType<T, string | undefined, string>;

/** Run statuses, as DESIGN.md fixes them. */
export type RunStatus = "running" | "succeeded" | "failed" | "canceled" | "budget_exceeded";

/** Step statuses of a materialization row. */
export type MaterializationStatus =
  | "planned"
  | "running"
  | "succeeded"
  | "failed"
  | "skipped"
  | "canceled";

/** `strata.runs` */
export interface RunsTable {
  id: string;
  status: RunStatus;
  selection: string;
  started_at: DefaultTimestamp;
  finished_at: Timestamp | null;
  error: string | null;
  max_cost_usd: Numeric | null;
  partitions: DefaultJson<string[]>;
  options: DefaultJson<Record<string, unknown>>;
  pid: number | null;
  hostname: string | null;
  resumed_from: string | null;
  calls_dispatched: Counter;
  project: string | null;
  project_file: string | null;
}

/** `strata.materializations` */
export interface MaterializationsTable {
  id: string;
  run_id: string;
  asset_key: string;
  partition_key: string | null;
  status: MaterializationStatus;
  code_version: string | null;
  data_version: string | null;
  started_at: Timestamp | null;
  finished_at: Timestamp | null;
  row_count: number | null;
  prompt_tokens: Counter;
  cached_tokens: Counter;
  completion_tokens: Counter;
  cost_usd: DefaultNumeric;
  metadata: DefaultJson<Record<string, unknown>>;
  storage_path: string | null;
  /** The SHA-256 (hex) of the file at `storage_path`; null for files of earlier versions. */
  storage_sha256: ColumnType<string | null, string | null | undefined, string | null>;
  error: string | null;
  dep_keys: DefaultJson<string[]>;
}

/** `strata.materialization_inputs` */
export interface MaterializationInputsTable {
  materialization_id: string;
  input_materialization_id: string;
}

/** `strata.assets` */
export interface AssetsTable {
  asset_key: string;
  group_name: string;
  description: string | null;
  code_version: string | null;
  tags: Json<Record<string, string>>;
  owners: Json<string[]>;
  kinds: Json<string[]>;
  partitions: string | null;
  updated_at: DefaultTimestamp;
}

/** `strata.asset_deps` */
export interface AssetDepsTable {
  asset_key: string;
  dep_key: string;
}

/** `strata.catalog_state` */
export interface CatalogStateTable {
  id: number;
  fingerprint: string;
  asset_count: number;
  updated_at: DefaultTimestamp;
}

/** `strata.inference_calls`: the cost ledger. */
export interface InferenceCallsTable {
  id: Generated<number>;
  run_id: string;
  materialization_id: string | null;
  asset_key: string;
  partition_key: string | null;
  document_id: string;
  model: string;
  provider_model: string;
  endpoint: string;
  request_hash: string;
  status: "dispatched" | "succeeded" | "failed";
  attempts: Counter;
  prompt_tokens: Counter;
  cached_tokens: Counter;
  completion_tokens: Counter;
  reasoning_tokens: Counter;
  input_price_per_mtok: DefaultNumeric;
  cached_input_price_per_mtok: DefaultNumeric;
  output_price_per_mtok: DefaultNumeric;
  /** Computed by Postgres from the tokens and the snapshotted prices. */
  cost_usd: ColumnType<string, never, never>;
  latency_ms: number | null;
  cache_hit: ColumnType<boolean, boolean | undefined, boolean>;
  cached_from: number | null;
  error: string | null;
  output: string | null;
  created_at: DefaultTimestamp;
}

/** The columns every `strata.cost_by_*` view has besides its group column. */
export interface CostColumns {
  calls: number;
  cache_hits: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  cost_usd: string;
}

/** `strata.migrations`: applied migration files. */
export interface MigrationsTable {
  name: string;
  checksum: string;
  applied_at: DefaultTimestamp;
}

/**
 * The kysely schema of everything in the `strata` Postgres schema.
 *
 * @example
 * const runs = await db.selectFrom("strata.runs").selectAll().execute();
 */
export interface Database {
  "strata.runs": RunsTable;
  "strata.materializations": MaterializationsTable;
  "strata.materialization_inputs": MaterializationInputsTable;
  "strata.assets": AssetsTable;
  "strata.asset_deps": AssetDepsTable;
  "strata.catalog_state": CatalogStateTable;
  "strata.inference_calls": InferenceCallsTable;
  "strata.migrations": MigrationsTable;
  "strata.cost_by_asset": CostColumns & { asset_key: string };
  "strata.cost_by_model": CostColumns & { model: string };
  "strata.cost_by_run": CostColumns & { run_id: string };
  "strata.cost_by_day": CostColumns & { day: Date };
}

/** A kysely instance over strata's schema. */
export type StrataDb = Kysely<Database>;
