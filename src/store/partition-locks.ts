import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";
import type { Store } from "./store.js";

/** An asset partition (`partitionKey` null for an unpartitioned asset). */
export interface AssetPartition {
  readonly assetKey: string;
  readonly partitionKey: string | null;
}

/**
 * Session-level advisory locks, one per asset partition, held on one dedicated connection for
 * the whole run: two runs on one Postgres never materialize the same asset partition at once,
 * while different partitions run in parallel. On the embedded database the process lock already
 * gives one writer, so locking always succeeds there.
 *
 * @example
 * const locks = await openPartitionLocks(store);
 * const busy = await locks.tryLockAll([{ assetKey: "a", partitionKey: "en" }]);
 * ... await locks.release();
 */
export interface PartitionLocks {
  /** Takes every lock, or none: returns the first partition another session holds. */
  tryLockAll(partitions: ReadonlyArray<AssetPartition>): Promise<AssetPartition | null>;
  release(): Promise<void>;
}

// The first half of every two-key advisory lock strata takes for partitions.
const LOCK_NAMESPACE = "strata.partition";

/** Opens the lock session of a run. */
export async function openPartitionLocks(store: Store): Promise<PartitionLocks> {
  if (store.kind !== "postgres") {
    return { tryLockAll: async () => null, release: async () => {} };
  }
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let session!: (conn: Kysely<Database>) => void;
  const opened = new Promise<Kysely<Database>>((resolve) => {
    session = resolve;
  });
  const holder = store.db.connection().execute(async (conn) => {
    session(conn);
    await released;
    await sql`select pg_advisory_unlock_all()`.execute(conn);
  });
  const failed = holder.then(() => undefined as never);
  const conn = await Promise.race([opened, failed]);
  return {
    tryLockAll: async (partitions) => {
      const taken: AssetPartition[] = [];
      for (const p of partitions) {
        const row = await sql<{ ok: boolean }>`
          select pg_try_advisory_lock(hashtext(${LOCK_NAMESPACE}), hashtext(${lockName(p)})) as ok`.execute(
          conn,
        );
        if (row.rows[0]?.ok !== true) {
          for (const t of taken) {
            await sql`select pg_advisory_unlock(hashtext(${LOCK_NAMESPACE}), hashtext(${lockName(t)}))`.execute(
              conn,
            );
          }
          return p;
        }
        taken.push(p);
      }
      return null;
    },
    release: async () => {
      release();
      await holder.catch(() => {});
    },
  };
}

function lockName(p: AssetPartition): string {
  // Neither asset keys nor partition keys contain a space.
  return `${p.assetKey} ${p.partitionKey ?? ""}`;
}

/** The run (and its process) that is materializing an asset partition, if any is recorded. */
export async function runHolding(
  db: Kysely<Database>,
  partition: AssetPartition,
): Promise<{ runId: string; pid: number | null; hostname: string | null } | undefined> {
  let query = db
    .selectFrom("strata.materializations as m")
    .innerJoin("strata.runs as r", "r.id", "m.run_id")
    .select(["r.id", "r.pid", "r.hostname"])
    .where("r.status", "=", "running")
    .where("m.asset_key", "=", partition.assetKey)
    .where("m.status", "in", ["planned", "running"]);
  query =
    partition.partitionKey === null
      ? query.where("m.partition_key", "is", null)
      : query.where("m.partition_key", "=", partition.partitionKey);
  const row = await query.orderBy("r.started_at", "desc").executeTakeFirst();
  return row === undefined ? undefined : { runId: row.id, pid: row.pid, hostname: row.hostname };
}
