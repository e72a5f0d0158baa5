import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { migrate } from "../../src/store/migrator.js";
import {
  dumpMemoryStore,
  openMemoryStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";

/** The backends store tests run on: PGlite always, Postgres when TEST_DATABASE_URL is set. */
export type Backend = "pglite" | "postgres";

export const BACKENDS: ReadonlyArray<Backend> = process.env.TEST_DATABASE_URL
  ? ["pglite", "postgres"]
  : ["pglite"];

/** A store owned by one test, removed by `dispose()`. */
export interface TestStore extends Store {
  /** The Postgres URL of the test's own database (postgres backend only). */
  readonly url: string | undefined;
  dispose(): Promise<void>;
}

let template: Promise<Blob> | undefined;

/** A migrated PGlite data directory, built once per test process and loaded per test. */
function pgliteTemplate(): Promise<Blob> {
  const prebuilt = process.env.STRATA_TEST_TEMPLATE;
  template ??= prebuilt
    ? readFile(prebuilt).then((bytes) => new Blob([bytes]))
    : (async () => {
        const store = await openMemoryStore();
        await migrate(store.db);
        const blob = await dumpMemoryStore(store);
        await store.close();
        return blob;
      })();
  return template;
}

let emptyTemplate: Promise<Blob> | undefined;

/**
 * A new, unmigrated in-memory PGlite database: a copy of the run's empty template (see
 * test/global-setup.ts), or of one made once per test process.
 */
export async function openEmptyPgliteStore(): Promise<Store> {
  const prebuilt = process.env.STRATA_TEST_EMPTY_TEMPLATE;
  emptyTemplate ??= prebuilt
    ? readFile(prebuilt).then((bytes) => new Blob([bytes]))
    : (async () => {
        const store = await openMemoryStore();
        const blob = await dumpMemoryStore(store);
        await store.close();
        return blob;
      })();
  return openMemoryStore(await emptyTemplate);
}

/**
 * A fresh, migrated store for one test: a copy of the PGlite template, or a new database on
 * the TEST_DATABASE_URL server.
 */
export async function createTestStore(backend: Backend): Promise<TestStore> {
  if (backend === "pglite") {
    const store = await openMemoryStore(await pgliteTemplate());
    return { ...store, url: undefined, close: store.close, dispose: () => store.close() };
  }
  const database = await createTestDatabase();
  const store = await openPostgresStore(database.url);
  await migrate(store.db);
  return {
    ...store,
    url: database.url,
    close: store.close,
    dispose: async () => {
      await store.close();
      await database.drop();
    },
  };
}

/** A new, empty database on the TEST_DATABASE_URL server, and a way to drop it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.TEST_DATABASE_URL;
  if (base === undefined) throw new Error("TEST_DATABASE_URL is not set");
  const name = `strata_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  await withAdmin(base, (client) => client.query(`create database ${name}`));
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () =>
      withAdmin(base, (client) =>
        client.query(`drop database if exists ${name} with (force)`),
      ).then(() => undefined),
  };
}

async function withAdmin<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}
