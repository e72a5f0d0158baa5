import { migrate } from "./migrator.js";
import { dumpMemoryStore, openMemoryStore, type Store } from "./store.js";

// Creating a database costs PGlite's initdb plus every migration: seconds of CPU. A process
// does that once, keeps the migrated data directory as a template, and loads a copy of it for
// every further in-memory store (a test suite calling `materialize` per test).
let template: Promise<Blob> | undefined;

function migratedTemplate(): Promise<Blob> {
  template ??= (async () => {
    const store = await openMemoryStore();
    try {
      await migrate(store.db);
      return await dumpMemoryStore(store);
    } finally {
      await store.close();
    }
  })().catch((error: unknown) => {
    template = undefined; // the next call tries again
    throw error;
  });
  return template;
}

/**
 * Opens a new, migrated, in-memory embedded database: nothing is written to disk and
 * everything is gone on `close()`. Each call gets its own database.
 *
 * @example
 * const store = await openMigratedMemoryStore();
 * try { ... } finally { await store.close(); }
 */
export async function openMigratedMemoryStore(): Promise<Store> {
  return openMemoryStore(await migratedTemplate());
}
