import { PGlite } from "@electric-sql/pglite";

/**
 * The Postgres settings strata starts the embedded database with, where PGlite's defaults are
 * sized for a server rather than for a library sharing its process with a run.
 *
 * PGlite allocates its buffer pool inside its WebAssembly memory, which never shrinks, so each
 * megabyte of `shared_buffers` is a megabyte of the strata process's resident memory for good
 * once a long run (a fan-out writing 100,000 ledger rows) has touched it. The pages themselves
 * stay in the operating system's file cache, so a smaller pool costs little: the embedded
 * database holds one project's records, written and read by one process.
 *
 * @example
 * const pglite = await PGlite.create(dataDir, { startParams: pgliteStartParams() });
 */
export const PGLITE_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  // PGlite's default is 128MB (and wal_buffers follows it: 1/32 of the pool)
  shared_buffers: "16MB",
  // only index builds and vacuum use it; PGlite's default is 64MB
  maintenance_work_mem: "16MB",
});

/**
 * PGlite's start parameters with {@link PGLITE_SETTINGS} added as `-c name=value`.
 *
 * PGlite replaces its own parameters (single-user mode, no parallel workers, ...) with the ones
 * given, so they are kept and ours appended.
 *
 * @example
 * const pglite = await PGlite.create({ startParams: pgliteStartParams() });
 */
export function pgliteStartParams(): string[] {
  const params = [...PGlite.defaultStartParams];
  for (const [name, value] of Object.entries(PGLITE_SETTINGS))
    params.push("-c", `${name}=${value}`);
  return params;
}
