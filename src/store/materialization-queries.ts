import type { Kysely } from "kysely";
import type { Database } from "./database.js";

/** An upstream materialization that a materialization read. */
export interface MaterializationInput {
  readonly materializationId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
}

/** The latest successful materialization of one asset partition, with what it read. */
export interface LatestMaterialization {
  readonly id: string;
  readonly runId: string;
  readonly assetKey: string;
  readonly partitionKey: string | null;
  readonly codeVersion: string | null;
  readonly dataVersion: string | null;
  readonly finishedAt: Date;
  readonly rowCount: number | null;
  readonly storagePath: string | null;
  /** The dep keys declared when it was built. */
  readonly depKeys: ReadonlyArray<string>;
  readonly inputs: ReadonlyArray<MaterializationInput>;
}

/**
 * The latest succeeded materialization of each asset partition, as a query to add columns and
 * filters to: one row per asset key and partition key, the one that finished last (the greatest
 * id among those that finished at the same instant). What every reader of "the current value of
 * an asset partition" asks, so they all agree on it.
 *
 * @example
 * const rows = await selectLatestSucceeded(db).select(["id", "storage_path"])
 *   .where("asset_key", "=", "analyses").execute();
 */
export function selectLatestSucceeded(db: Kysely<Database>) {
  return db
    .selectFrom("strata.materializations")
    .distinctOn(["asset_key", "partition_key"])
    .where("status", "=", "succeeded")
    .orderBy("asset_key")
    .orderBy("partition_key")
    .orderBy("finished_at", "desc")
    .orderBy("id", "desc");
}

/**
 * The latest successful materialization of every asset partition (of `assetKeys` when given),
 * each with the upstream materializations it read.
 *
 * @example
 * const latest = await latestMaterializations(store.db, ["analyses"]);
 */
export async function latestMaterializations(
  db: Kysely<Database>,
  assetKeys?: ReadonlyArray<string>,
): Promise<ReadonlyArray<LatestMaterialization>> {
  if (assetKeys !== undefined && assetKeys.length === 0) return [];
  let query = selectLatestSucceeded(db).select([
    "id",
    "run_id",
    "asset_key",
    "partition_key",
    "code_version",
    "data_version",
    "finished_at",
    "row_count",
    "storage_path",
    "dep_keys",
  ]);
  if (assetKeys !== undefined) query = query.where("asset_key", "in", [...assetKeys]);
  const rows = await query.execute();
  const inputs = await inputsOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({
    id: r.id,
    runId: r.run_id,
    assetKey: r.asset_key,
    partitionKey: r.partition_key,
    codeVersion: r.code_version,
    dataVersion: r.data_version,
    finishedAt: r.finished_at ?? new Date(0),
    rowCount: r.row_count,
    storagePath: r.storage_path,
    depKeys: r.dep_keys,
    inputs: inputs.get(r.id) ?? [],
  }));
}

/** The upstream materializations each of `ids` read. */
export async function inputsOf(
  db: Kysely<Database>,
  ids: ReadonlyArray<string>,
): Promise<Map<string, MaterializationInput[]>> {
  const byId = new Map<string, MaterializationInput[]>();
  const CHUNK = 5_000;
  for (let i = 0; i < ids.length; i += CHUNK) {
    const rows = await db
      .selectFrom("strata.materialization_inputs as mi")
      .innerJoin("strata.materializations as m", "m.id", "mi.input_materialization_id")
      .select(["mi.materialization_id", "m.id", "m.asset_key", "m.partition_key"])
      .where("mi.materialization_id", "in", ids.slice(i, i + CHUNK))
      .execute();
    for (const r of rows) {
      let list = byId.get(r.materialization_id);
      if (list === undefined) {
        list = [];
        byId.set(r.materialization_id, list);
      }
      list.push({ materializationId: r.id, assetKey: r.asset_key, partitionKey: r.partition_key });
    }
  }
  return byId;
}
