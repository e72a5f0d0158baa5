import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";
import { selectLatestSucceeded } from "./materialization-queries.js";

/** What a prune removed (or, dry, would remove). */
export interface PruneResult {
  readonly runs: number;
  readonly materializations: number;
  readonly ledgerRows: number;
  /** Arrow files of the removed materializations, for the caller to delete. */
  readonly storagePaths: ReadonlyArray<string>;
}

/**
 * Deletes what runs that ended before `before` left behind, except what is still current or is
 * the provenance of something kept: their ledger rows, their materializations (with provenance
 * rows), and the runs left with nothing.
 *
 * Kept whatever their age: the latest successful materialization of every asset partition, every
 * materialization of a run that is not pruned, and every materialization a kept one read,
 * transitively up the chain, so no kept materialization loses a row of what it read (nor the
 * file it read). A kept materialization keeps its run row. All in one transaction; with
 * `dryRun` nothing is deleted.
 *
 * @example
 * const result = await pruneRuns(store.db, new Date(Date.now() - 30 * 86_400_000));
 */
export async function pruneRuns(
  db: Kysely<Database>,
  before: Date,
  options: { readonly dryRun?: boolean } = {},
): Promise<PruneResult> {
  const cutoff = before.toISOString();
  return db.transaction().execute(async (trx) => {
    await sql`
      create temporary table strata_prune_runs on commit drop as
        select id from strata.runs
         where status <> 'running' and coalesce(finished_at, started_at) < ${cutoff}::timestamptz`.execute(
      trx,
    );
    // The latest success of every asset partition and everything of the runs that stay, then
    // what those read, and so on up: deleting any of it would cascade into a kept
    // materialization's provenance rows.
    await sql`
      create temporary table strata_prune_keep on commit drop as
        with recursive keep(id) as (
            select id from (${selectLatestSucceeded(trx).select("id")}) latest
          union
            select id from strata.materializations
             where run_id not in (select id from strata_prune_runs)
          union
            select mi.input_materialization_id
              from strata.materialization_inputs mi join keep k on k.id = mi.materialization_id)
        select id from keep`.execute(trx);
    const doomed = await sql<{ id: string; storage_path: string | null }>`
      select m.id, m.storage_path from strata.materializations m
       where m.run_id in (select id from strata_prune_runs)
         and m.id not in (select id from strata_prune_keep)`.execute(trx);
    const ledger = await sql<{ n: number }>`
      select count(*)::int as n from strata.inference_calls
       where run_id in (select id from strata_prune_runs)`.execute(trx);
    const emptyRuns = await sql<{ n: number }>`
      select count(*)::int as n from strata_prune_runs r
       where not exists (select 1 from strata.materializations m
                          where m.run_id = r.id and m.id in (select id from strata_prune_keep))`.execute(
      trx,
    );
    const result: PruneResult = {
      runs: emptyRuns.rows[0]?.n ?? 0,
      materializations: doomed.rows.length,
      ledgerRows: ledger.rows[0]?.n ?? 0,
      storagePaths: doomed.rows.flatMap((r) => (r.storage_path === null ? [] : [r.storage_path])),
    };
    if (options.dryRun) return result;
    await sql`delete from strata.inference_calls where run_id in (select id from strata_prune_runs)`.execute(
      trx,
    );
    await sql`
      delete from strata.materializations
       where run_id in (select id from strata_prune_runs)
         and id not in (select id from strata_prune_keep)`.execute(trx);
    await sql`
      delete from strata.runs r
       where r.id in (select id from strata_prune_runs)
         and not exists (select 1 from strata.materializations m where m.run_id = r.id)`.execute(
      trx,
    );
    return result;
  });
}
