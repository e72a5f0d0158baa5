import { StrataError } from "../errors.js";
import { openPartitionLocks, runHolding } from "../store/partition-locks.js";
import type { Store } from "../store/store.js";
import type { MaterializationPlan } from "./materialization-plan.js";

/**
 * Runs `body` holding the lock of every asset partition the plan builds, so two runs never build
 * one asset partition at once: every lock is taken up front, or the run is refused
 * (`partition_locked`, naming the run that holds it) before anything is recorded. The locks
 * are released when `body` settles. On the embedded database the process lock already gives
 * one writer, and locking always succeeds.
 *
 * @example
 * const result = await withPlanLocks(store, plan, () => executeRun({ project, store, plan, storageRoot }));
 */
export async function withPlanLocks<T>(
  store: Store,
  plan: MaterializationPlan,
  body: () => Promise<T>,
): Promise<T> {
  const locks = await openPartitionLocks(store);
  try {
    const busy = await locks.tryLockAll(plan.steps);
    if (busy !== null) {
      const holder = await runHolding(store.db, busy);
      const what =
        busy.partitionKey === null
          ? `asset "${busy.assetKey}"`
          : `partition "${busy.partitionKey}" of asset "${busy.assetKey}"`;
      const who =
        holder === undefined
          ? "another run"
          : `run ${holder.runId}${holder.pid === null ? "" : ` (pid ${holder.pid} on ${holder.hostname ?? "?"})`}`;
      throw new StrataError(
        "partition_locked",
        `${what} is being materialized by ${who}; wait for it to finish, or select other assets or partitions`,
      );
    }
    return await body();
  } finally {
    await locks.release();
  }
}
