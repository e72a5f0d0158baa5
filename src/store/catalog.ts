import { createHash } from "node:crypto";
import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";

/** One declared asset as the catalog tables hold it. */
export interface CatalogAsset {
  readonly key: string;
  readonly group: string;
  readonly description: string | null;
  readonly codeVersion: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly owners: ReadonlyArray<string>;
  readonly kinds: ReadonlyArray<string>;
  /** A description of the partitions (`daily from 2026-01-01`), or null. */
  readonly partitions: string | null;
  readonly deps: ReadonlyArray<string>;
}

// Rows per insert statement: 9 columns each stays far below Postgres's 65 535 parameters.
const BATCH = 2_000;

/**
 * Writes the declared graph to `strata.assets` and `strata.asset_deps` in one transaction:
 * assets upserted, assets no longer declared removed, deps replaced. An unchanged project
 * (same fingerprint as the last sync) writes nothing.
 *
 * @example
 * await syncCatalog(store.db, [{ key: "a", group: "default", ..., deps: [] }]);
 */
export async function syncCatalog(
  db: Kysely<Database>,
  assets: ReadonlyArray<CatalogAsset>,
): Promise<{ readonly changed: boolean }> {
  const fingerprint = catalogFingerprint(assets);
  const current = await db
    .selectFrom("strata.catalog_state")
    .select("fingerprint")
    .where("id", "=", 1)
    .executeTakeFirst();
  if (current?.fingerprint === fingerprint) return { changed: false };

  await db.transaction().execute(async (trx) => {
    // Serializes concurrent syncs of one database (two CLI processes loading a project at once).
    await sql`lock table strata.catalog_state in exclusive mode`.execute(trx);
    const keys = assets.map((a) => a.key);
    await sql`delete from strata.assets where not (asset_key = any(${keys}::text[]))`.execute(trx);
    await trx.deleteFrom("strata.asset_deps").execute();
    for (let i = 0; i < assets.length; i += BATCH) {
      const chunk = assets.slice(i, i + BATCH);
      await trx
        .insertInto("strata.assets")
        .values(
          chunk.map((a) => ({
            asset_key: a.key,
            group_name: a.group,
            description: a.description,
            code_version: a.codeVersion,
            tags: JSON.stringify(a.tags),
            owners: JSON.stringify(a.owners),
            kinds: JSON.stringify(a.kinds),
            partitions: a.partitions,
          })),
        )
        .onConflict((oc) =>
          oc.column("asset_key").doUpdateSet((eb) => ({
            group_name: eb.ref("excluded.group_name"),
            description: eb.ref("excluded.description"),
            code_version: eb.ref("excluded.code_version"),
            tags: eb.ref("excluded.tags"),
            owners: eb.ref("excluded.owners"),
            kinds: eb.ref("excluded.kinds"),
            partitions: eb.ref("excluded.partitions"),
            updated_at: sql<Date>`now()`,
          })),
        )
        .execute();
    }
    const deps = assets.flatMap((a) =>
      [...new Set(a.deps)].map((dep) => ({ asset_key: a.key, dep_key: dep })),
    );
    for (let i = 0; i < deps.length; i += BATCH * 4) {
      await trx
        .insertInto("strata.asset_deps")
        .values(deps.slice(i, i + BATCH * 4))
        .execute();
    }
    await trx
      .insertInto("strata.catalog_state")
      .values({ id: 1, fingerprint, asset_count: assets.length })
      .onConflict((oc) =>
        oc
          .column("id")
          .doUpdateSet({ fingerprint, asset_count: assets.length, updated_at: sql<Date>`now()` }),
      )
      .execute();
  });
  return { changed: true };
}

function catalogFingerprint(assets: ReadonlyArray<CatalogAsset>): string {
  const hash = createHash("sha256");
  for (const a of [...assets].sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0))) {
    hash.update(
      JSON.stringify([
        a.key,
        a.group,
        a.description,
        a.codeVersion,
        Object.entries(a.tags).sort(),
        a.owners,
        a.kinds,
        a.partitions,
        [...a.deps].sort(),
      ]),
    );
    hash.update("\n");
  }
  return hash.digest("hex");
}
