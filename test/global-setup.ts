import { rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { migrate } from "../src/store/migrator.js";
import { dumpMemoryStore, openMemoryStore } from "../src/store/store.js";

/**
 * Builds the migrated PGlite template once for the whole test run (not once per test file) and
 * hands its path to the workers through STRATA_TEST_TEMPLATE.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const store = await openMemoryStore();
  await migrate(store.db);
  const blob = await dumpMemoryStore(store);
  await store.close();
  const path = join(tmpdir(), `strata-test-template-${process.pid}.tar`);
  await writeFile(path, Buffer.from(await blob.arrayBuffer()));
  process.env.STRATA_TEST_TEMPLATE = path;
  return async () => {
    await rm(path, { force: true });
  };
}
