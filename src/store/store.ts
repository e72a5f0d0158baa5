import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import type { Kysely } from "kysely";
import { StoreError } from "../errors.js";
import { Redactor, registerSecret } from "../util/redactor.js";
import type { Database } from "./database.js";
import { acquireEmbeddedLock, type EmbeddedLock } from "./embedded-lock.js";
import { type DialectModules, loadEmbedded } from "./embedded-modules.js";
import { describePostgresUrl } from "./postgres-url.js";

// The database drivers (pg, PGlite, kysely) are imported when a store is opened, not with this
// module: `strata lineage` and a project file importing "strata" need none of them.

/**
 * strata's database: a kysely instance over the `strata` schema, on a Postgres server or on the
 * embedded PGlite database.
 *
 * @example
 * const store = await openStore({ projectDir: process.cwd() });
 * try { await store.db.selectFrom("strata.runs").selectAll().execute(); } finally { await store.close(); }
 */
export interface Store {
  readonly db: Kysely<Database>;
  readonly kind: "postgres" | "pglite";
  /** Where the data lives, for messages: `Postgres at host:port/db` or the embedded path. */
  readonly location: string;
  close(): Promise<void>;
}

/**
 * Whether strata's bookkeeping on `store` may commit without waiting for the WAL flush (step
 * states, dispatch counts). On a Postgres server it may: its WAL writer flushes them within a
 * fraction of a second, a later synchronous commit (a run row, ledger rows) flushes them first,
 * and only a crash of the server host can lose them, which resume rebuilds or reports. Not on
 * the embedded database: it has no WAL writer to flush them later.
 *
 * @example
 * const recorder = new StepRecorder(store.db, { relaxedCommit: allowsRelaxedCommits(store) });
 */
export function allowsRelaxedCommits(store: Pick<Store, "kind">): boolean {
  return store.kind === "postgres";
}

/** How to open the store. */
export interface OpenStoreOptions {
  /** A `postgres://` URL; when absent, the embedded database in `<projectDir>/.strata/db`. */
  readonly databaseUrl?: string | undefined;
  readonly projectDir: string;
  /**
   * Apply pending migrations on open and refuse a schema changed since, or a role that may
   * not read it (default true).
   */
  readonly migrate?: boolean;
}

/** Where the embedded database of a project lives. */
export function embeddedDataDir(projectDir: string): string {
  return join(projectDir, ".strata", "db");
}

/**
 * Opens the store the way the CLI does: Postgres when a URL is given, else the embedded database.
 *
 * @example
 * const store = await openStore({ databaseUrl: process.env.DATABASE_URL, projectDir: "." });
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const store =
    options.databaseUrl !== undefined && options.databaseUrl !== ""
      ? await openPostgresStore(options.databaseUrl)
      : await openEmbeddedStore(embeddedDataDir(options.projectDir), {
          // a new database starts migrated; one opened to manage migrations starts empty
          fromImage: options.migrate !== false,
        });
  if (options.migrate !== false) {
    try {
      const { prepareSchema } = await import("./schema-guard.js");
      await prepareSchema(store.db);
    } catch (error) {
      await store.close();
      throw error;
    }
  }
  return store;
}

// bigint counters come back as JS numbers on both backends; numeric stays an exact string.
const INT8_OID = 20;
const parseInt8 = (value: string) => Number(value);

/**
 * Connects to a Postgres server and checks that it answers; an unreachable server is a
 * `db_unreachable` error naming host and port, never the password.
 *
 * @example
 * const store = await openPostgresStore("postgres://postgres@127.0.0.1:5432/postgres");
 */
export async function openPostgresStore(databaseUrl: string): Promise<Store> {
  const target = describePostgresUrl(databaseUrl);
  // Redacted from everything strata stores or prints from now on; a password equal to the
  // user name ("postgres:postgres") is no secret, and redacting the word would mangle messages.
  if (target.password !== target.user) registerSecret(target.password);
  const secret = new Redactor([target.password], { minLength: 1 });
  const [{ default: pg }, { Kysely, PostgresDialect }] = await Promise.all([
    import("pg"),
    import("kysely"),
  ]);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: 10,
    connectionTimeoutMillis: 10_000,
    types: {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === INT8_OID && format !== "binary"
          ? parseInt8
          : pg.types.getTypeParser(oid, format ?? "text")) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client losing its server (a restart) must not crash the process; the next query
  // reconnects or fails with its own error.
  pool.on("error", () => {});
  // A checked-out client (the partition-lock session, a transaction) has no pool listener: its
  // server going away must fail its next query, not crash the process.
  pool.on("connect", (client) => {
    client.on("error", () => {});
  });
  try {
    const client = await pool.connect();
    client.release();
  } catch (error) {
    await pool.end().catch(() => {});
    throw new StoreError(
      "db_unreachable",
      `cannot reach Postgres at ${target.hostPort}: ${secret.redact(errorReason(error))}`,
      { cause: redactError(error, secret) },
    );
  }
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    kind: "postgres",
    location: `Postgres at ${target.hostPort}/${target.database}`,
    close: () => db.destroy(),
  };
}

/** Options of {@link openEmbeddedStore}. */
export interface OpenEmbeddedStoreOptions {
  /**
   * Create a new database as a copy of the migrated image `npm run build` packs with strata
   * (see embedded-image.ts), when there is one for this PGlite and these migrations; else PGlite
   * creates an empty one. Default false.
   */
  readonly fromImage?: boolean;
  /** Where the image is; default the one built with strata. */
  readonly imageDir?: string;
}

/**
 * Opens (creating if needed) the embedded database in `dataDir`, holding its process lock until
 * `close()`.
 *
 * @example
 * const store = await openEmbeddedStore(".strata/db");
 */
export async function openEmbeddedStore(
  dataDir: string,
  options: OpenEmbeddedStoreOptions = {},
): Promise<Store> {
  mkdirSync(join(dataDir, ".."), { recursive: true });
  const lock = acquireEmbeddedLock(dataDir);
  let pglite: PGlite | undefined;
  let dialect: DialectModules;
  const modules = loadEmbedded();
  try {
    const { PGlite, pgliteRuntime, pgliteStartParams } = await modules.pglite;
    const restored = options.fromImage === true && (await restoreImage(dataDir, options.imageDir));
    const initdb = !existsSync(join(dataDir, "PG_VERSION"));
    pglite = await PGlite.create(dataDir, {
      ...(await pgliteRuntime({ initdb })),
      startParams: pgliteStartParams(),
      parsers: { [INT8_OID]: parseInt8 },
    });
    // The image's migrations were applied when it was built; this database is made now.
    // (Plain statements: a `do` block would load PL/pgSQL, a tenth of a second.)
    if (restored) {
      const found = await pglite.query<{ found: boolean }>(
        "select to_regclass('strata.migrations') is not null as found",
      );
      if (found.rows[0]?.found === true) {
        await pglite.query("update strata.migrations set applied_at = now()");
      }
    }
    dialect = await modules.kysely;
  } catch (error) {
    await pglite?.close().catch(() => {});
    lock.release();
    throw new StoreError(
      "db_unreachable",
      `cannot open the embedded database at ${dataDir}: ${errorReason(error)}`,
      { cause: error },
    );
  }
  return wrapPglite(pglite, `embedded database at ${dataDir}`, dialect, lock);
}

/** Creates a new database at `dataDir` from the packed image, when it is new and one matches. */
async function restoreImage(dataDir: string, imageDir: string | undefined): Promise<boolean> {
  if (existsSync(join(dataDir, "PG_VERSION"))) return false;
  try {
    const [{ restoreEmbeddedImage }, { readMigrations }] = await Promise.all([
      import("./embedded-image.js"),
      import("./migrator.js"),
    ]);
    return restoreEmbeddedImage(dataDir, await readMigrations(), imageDir);
  } catch {
    return false; // PGlite creates the database instead
  }
}

/**
 * A store over an in-memory PGlite, optionally loaded from a data directory dump (tests build
 * one migrated template and load a copy per test).
 *
 * @example
 * const store = await openMemoryStore();
 */
export async function openMemoryStore(loadDataDir?: Blob): Promise<Store> {
  const modules = loadEmbedded();
  const { PGlite, pgliteRuntime, pgliteStartParams } = await modules.pglite;
  const pglite = await PGlite.create({
    ...(await pgliteRuntime({ initdb: loadDataDir === undefined })),
    startParams: pgliteStartParams(),
    parsers: { [INT8_OID]: parseInt8 },
    ...(loadDataDir !== undefined ? { loadDataDir } : {}),
  });
  return wrapPglite(pglite, "in-memory embedded database", await modules.kysely);
}

/** Dumps an in-memory store's data directory, for {@link openMemoryStore}. */
export async function dumpMemoryStore(store: Store): Promise<Blob> {
  const pglite = PGLITE_OF.get(store);
  if (pglite === undefined) throw new Error("only an embedded store can be dumped");
  return pglite.dumpDataDir("none");
}

const PGLITE_OF = new WeakMap<Store, PGlite>();

function wrapPglite(
  pglite: PGlite,
  location: string,
  [{ Kysely }, { PgliteDialect }]: DialectModules,
  lock?: EmbeddedLock,
): Store {
  const db = new Kysely<Database>({ dialect: new PgliteDialect(pglite) });
  let closed = false;
  const store: Store = {
    db,
    kind: "pglite",
    location,
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await db.destroy();
        await pglite.close();
      } finally {
        lock?.release();
      }
    },
  };
  PGLITE_OF.set(store, pglite);
  return store;
}

/** Checks that the store answers; used by commands that want a clear error early. */
export async function pingStore(store: Store): Promise<void> {
  const { sql } = await import("kysely");
  await sql`select 1`.execute(store.db);
}

function errorReason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return errorReason(error.errors[0]);
  }
  if (error instanceof Error)
    return error.message || (error as NodeJS.ErrnoException).code || "error";
  return String(error);
}

/** A copy of the error whose message and stack cannot leak the password. */
function redactError(error: unknown, secret: Redactor): Error {
  const source = error instanceof Error ? error : new Error(String(error));
  const copy = new Error(secret.redact(source.message));
  copy.name = source.name;
  copy.stack = secret.redact(source.stack ?? "");
  return copy;
}
