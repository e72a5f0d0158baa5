import { type Kysely, sql } from "kysely";
import type { Database, RunStatus } from "./database.js";

/** A run of a resume chain, as the chain's queries return it. */
export interface ChainRun {
  readonly id: string;
  readonly status: RunStatus;
}

/**
 * A run and every run it resumes, following `resumed_from`: the run itself first, the run that
 * started the chain last.
 *
 * @example
 * const ids = (await runChain(store.db, runId)).map((r) => r.id);
 */
export async function runChain(
  db: Kysely<Database>,
  runId: string,
): Promise<ReadonlyArray<ChainRun>> {
  // `union` (not `union all`) ends the walk should a chain ever loop.
  const result = await sql<{ id: string; status: RunStatus; depth: number }>`
    with recursive chain (id, status, resumed_from, depth) as (
      select id, status, resumed_from, 0 from strata.runs where id = ${runId}
      union
      select r.id, r.status, r.resumed_from, c.depth + 1
        from strata.runs r join chain c on r.id = c.resumed_from
       where c.depth < 10000
    )
    select id, status, min(depth)::int as depth from chain group by id, status order by depth`.execute(
    db,
  );
  return result.rows.map((r) => ({ id: r.id, status: r.status }));
}

/**
 * The runs that resume `runId`, directly or through other resumes, oldest first: the last one is
 * the newest run of the chain. Empty when nothing resumed it.
 *
 * @example
 * const newer = await resumesOf(store.db, runId);
 */
export async function resumesOf(
  db: Kysely<Database>,
  runId: string,
): Promise<ReadonlyArray<ChainRun>> {
  const result = await sql<{ id: string; status: RunStatus; depth: number }>`
    with recursive later (id, status, depth) as (
      select id, status, 1 from strata.runs where resumed_from = ${runId}
      union
      select r.id, r.status, l.depth + 1
        from strata.runs r join later l on r.resumed_from = l.id
       where l.depth < 10000
    )
    select id, status, min(depth)::int as depth from later group by id, status
     order by depth, id`.execute(db);
  return result.rows.map((r) => ({ id: r.id, status: r.status }));
}

/**
 * What the ledger holds as spent by `runIds` together (exact decimal, "0" for none).
 *
 * @example
 * const spent = await spentByRuns(store.db, chain.map((r) => r.id));
 */
export async function spentByRuns(
  db: Kysely<Database>,
  runIds: ReadonlyArray<string>,
): Promise<string> {
  if (runIds.length === 0) return "0";
  const row = await db
    .selectFrom("strata.inference_calls")
    .select(sql<string>`coalesce(sum(cost_usd), 0)::text`.as("spent"))
    .where(sql<boolean>`run_id = any(${[...runIds]}::text[])`)
    .executeTakeFirstOrThrow();
  return row.spent;
}

/**
 * The steps planned by `runIds` (every asset partition any of them recorded), each once, in the
 * order they were first planned.
 *
 * @example
 * const planned = await plannedSteps(store.db, chain.map((r) => r.id));
 */
export async function plannedSteps(
  db: Kysely<Database>,
  runIds: ReadonlyArray<string>,
): Promise<ReadonlyArray<{ assetKey: string; partitionKey: string | null }>> {
  if (runIds.length === 0) return [];
  const rows = await db
    .selectFrom("strata.materializations")
    .select(["asset_key", "partition_key"])
    .where(sql<boolean>`run_id = any(${[...runIds]}::text[])`)
    .orderBy("id")
    .execute();
  const seen = new Set<string>();
  const steps: Array<{ assetKey: string; partitionKey: string | null }> = [];
  for (const r of rows) {
    const id = JSON.stringify([r.asset_key, r.partition_key]);
    if (seen.has(id)) continue;
    seen.add(id);
    steps.push({ assetKey: r.asset_key, partitionKey: r.partition_key });
  }
  return steps;
}

/** Where a run stands in its resume chain, as `strata runs show` prints it. */
export interface RunChainSummary {
  /** The run that resumed this one, if any. */
  readonly resumedBy: string | null;
  /** What this run and every run it resumes spent together (exact decimal). */
  readonly spentUsd: string;
}

/**
 * The run that resumed `runId` and what its chain spent up to and including it.
 *
 * @example
 * const { resumedBy, spentUsd } = await runChainSummary(store.db, runId);
 */
export async function runChainSummary(
  db: Kysely<Database>,
  runId: string,
): Promise<RunChainSummary> {
  const chain = await runChain(db, runId);
  const later = await resumesOf(db, runId);
  return {
    resumedBy: later[0]?.id ?? null,
    spentUsd: await spentByRuns(
      db,
      chain.map((r) => r.id),
    ),
  };
}
