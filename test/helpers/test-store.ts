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

const templates = new Map<string, Promise<Blob>>();

/**
 * A PGlite data directory to load per test: the one test/global-setup.ts built for the run
 * (its path in `variable`), else one made once per test process, migrated or not.
 */
function pgliteTemplate(
  variable: "STRATA_TEST_TEMPLATE" | "STRATA_TEST_EMPTY_TEMPLATE",
): Promise<Blob> {
  let template = templates.get(variable);
  if (template === undefined) {
    const prebuilt = process.env[variable];
    template = prebuilt
      ? readFile(prebuilt).then((bytes) => new Blob([bytes]))
      : (async () => {
          const store = await openMemoryStore();
          if (variable === "STRATA_TEST_TEMPLATE") await migrate(store.db);
          const blob = await dumpMemoryStore(store);
          await store.close();
          return blob;
        })();
    templates.set(variable, template);
  }
  return template;
}

/** A new, unmigrated in-memory PGlite database (a copy of the empty template). */
export async function openEmptyPgliteStore(): Promise<Store> {
  return openMemoryStore(await pgliteTemplate("STRATA_TEST_EMPTY_TEMPLATE"));
}

/**
 * A fresh, migrated store for one test: a copy of the PGlite template, or a new database on
 * the TEST_DATABASE_URL server.
 */
export async function createTestStore(backend: Backend): Promise<TestStore> {
  if (backend === "pglite") {
    const store = await openMemoryStore(await pgliteTemplate("STRATA_TEST_TEMPLATE"));
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
