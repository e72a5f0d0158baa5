// What is read back from the cost ledger: cached answers, a materialization's totals, and the
// calls a run lost in flight. The writer is src/store/cost-ledger.ts.
import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";
import { decodeStoredText } from "./stored-text.js";

/** A succeeded, billed call that can answer an identical request. */
export interface CachedAnswer {
  readonly id: number;
  readonly requestHash: string;
  readonly output: string;
}

/**
 * The earliest succeeded, billed call with an answer for each of `hashes`: what answers an
 * identical request without calling the endpoint. An empty answer is never one, also on rows
 * that versions recording it as a success wrote. With `runIds`, only calls of those runs answer.
 *
 * @example
 * const answers = await findCachedAnswers(store.db, hashes);
 */
export async function findCachedAnswers(
  db: Kysely<Database>,
  hashes: ReadonlyArray<string>,
  runIds?: ReadonlyArray<string>,
): Promise<Map<string, CachedAnswer>> {
  const answers = new Map<string, CachedAnswer>();
  const unique = [...new Set(hashes)];
  for (let i = 0; i < unique.length; i += 5_000) {
    const chunk = unique.slice(i, i + 5_000);
    const rows = await db
      .selectFrom("strata.inference_calls")
      .distinctOn("request_hash")
      .select(["id", "request_hash", "output"])
      .where(sql<boolean>`request_hash = any(${chunk}::text[])`)
      .where("status", "=", "succeeded")
      .where("cache_hit", "=", false)
      .where("output", "is not", null)
      .where("output", "<>", "")
      .$if(runIds !== undefined, (q) => q.where(sql<boolean>`run_id = any(${runIds}::text[])`))
      .orderBy("request_hash")
      .orderBy("id")
      .execute();
    for (const r of rows) {
      answers.set(r.request_hash, {
        id: r.id,
        requestHash: r.request_hash,
        output: decodeStoredText(r.output ?? ""),
      });
    }
  }
  return answers;
}

/** Sets a materialization's token and cost totals from its ledger rows (exact, in SQL). */
export async function totalMaterializationCost(
  db: Kysely<Database>,
  materializationId: string,
): Promise<{
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  costUsd: string;
}> {
  const row = await db
    .selectFrom("strata.inference_calls")
    .select([
      sql<number>`coalesce(sum(prompt_tokens), 0)::bigint`.as("prompt_tokens"),
      sql<number>`coalesce(sum(cached_tokens), 0)::bigint`.as("cached_tokens"),
      sql<number>`coalesce(sum(completion_tokens), 0)::bigint`.as("completion_tokens"),
      sql<string>`coalesce(sum(cost_usd), 0)::text`.as("cost_usd"),
    ])
    .where("materialization_id", "=", materializationId)
    .executeTakeFirstOrThrow();
  await db
    .updateTable("strata.materializations")
    .set({
      prompt_tokens: row.prompt_tokens,
      cached_tokens: row.cached_tokens,
      completion_tokens: row.completion_tokens,
      cost_usd: row.cost_usd,
    })
    .where("id", "=", materializationId)
    .execute();
  return {
    promptTokens: row.prompt_tokens,
    cachedTokens: row.cached_tokens,
    completionTokens: row.completion_tokens,
    costUsd: row.cost_usd,
  };
}

/**
 * Calls a run sent whose outcome was never recorded (the process died with them in flight, or
 * they were aborted): calls counted as dispatched minus documents with a recorded outcome.
 *
 * @example
 * const lost = await callsLostInFlight(store.db, runId);
 */
export async function callsLostInFlight(db: Kysely<Database>, runId: string): Promise<number> {
  const row = await sql<{ lost: number }>`
    select greatest(0, r.calls_dispatched - (
             select count(distinct (c.materialization_id, c.document_id, c.model))
               from strata.inference_calls c
              where c.run_id = r.id and not c.cache_hit))::int as lost
      from strata.runs r where r.id = ${runId}`.execute(db);
  return row.rows[0]?.lost ?? 0;
}
