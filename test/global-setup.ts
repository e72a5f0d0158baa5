import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate } from "../src/store/migrator.js";
import { dumpMemoryStore, openMemoryStore } from "../src/store/store.js";

/**
 * Builds the PGlite templates once for the whole test run (not once per test file) and hands
 * their paths to the workers: a migrated database (STRATA_TEST_TEMPLATE) and a new, unmigrated
 * one (STRATA_TEST_EMPTY_TEMPLATE). Each creation is an initdb: seconds of CPU.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const store = await openMemoryStore();
  const empty = await dumpMemoryStore(store);
  await migrate(store.db);
  const migrated = await dumpMemoryStore(store);
  await store.close();
  const paths: string[] = [];
  for (const [name, blob] of [
    ["STRATA_TEST_TEMPLATE", migrated],
    ["STRATA_TEST_EMPTY_TEMPLATE", empty],
  ] as const) {
    const path = join(tmpdir(), `strata-test-${name.toLowerCase()}-${process.pid}.tar`);
    await writeFile(path, Buffer.from(await blob.arrayBuffer()));
    process.env[name] = path;
    paths.push(path);
  }
  return async () => {
    await Promise.all(paths.map((path) => rm(path, { force: true })));
  };
}
