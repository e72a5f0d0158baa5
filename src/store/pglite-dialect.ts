import type { PGlite, Transaction } from "@electric-sql/pglite";
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";

/**
 * A kysely dialect for an embedded PGlite database that keeps transactions isolated.
 *
 * PGlite is one Postgres backend: every query runs on its single session. A kysely transaction
 * therefore holds PGlite's exclusive `transaction()` from BEGIN to COMMIT, and every other query,
 * in or out of a transaction, waits for it, so no two transactions ever interleave on the
 * shared session. Inside a transaction, use the `trx` object kysely hands you: a query on the
 * outer `db` waits for the transaction to end.
 *
 * @example
 * const db = new Kysely<Database>({ dialect: new PgliteDialect(await PGlite.create()) });
 */
export class PgliteDialect implements Dialect {
  readonly #pglite: PGlite;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  createAdapter() {
    return new PostgresAdapter();
  }

  createDriver(): Driver {
    return new PgliteDriver(this.#pglite);
  }

  createIntrospector(db: Kysely<unknown>) {
    return new PostgresIntrospector(db);
  }

  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
}

class PgliteDriver implements Driver {
  readonly #pglite: PGlite;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  async init(): Promise<void> {
    await this.#pglite.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    // A fresh connection object per acquisition: transaction state belongs to one caller.
    return new PgliteConnection(this.#pglite);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    await (connection as PgliteConnection).begin(settings);
  }

  async commitTransaction(connection: DatabaseConnection) {
    await (connection as PgliteConnection).end("commit");
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    await (connection as PgliteConnection).end("rollback");
  }

  async releaseConnection(): Promise<void> {}

  async destroy(): Promise<void> {
    // The PGlite instance is owned by whoever created it (the store closes it).
  }
}

/** An open PGlite transaction, held until `finish` is called. */
interface OpenTransaction {
  readonly tx: Transaction;
  readonly finish: (outcome: "commit" | "rollback") => void;
  readonly done: Promise<void>;
}

class PgliteConnection implements DatabaseConnection {
  readonly #pglite: PGlite;
  #open: OpenTransaction | undefined;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  async begin(settings: TransactionSettings): Promise<void> {
    if (this.#open !== undefined)
      throw new Error("a transaction is already open on this connection");
    const opened = new Promise<OpenTransaction>((resolveOpen, rejectOpen) => {
      let finish!: (outcome: "commit" | "rollback") => void;
      const outcome = new Promise<"commit" | "rollback">((resolve) => {
        finish = resolve;
      });
      const done = this.#pglite
        .transaction(async (tx) => {
          if (settings.isolationLevel !== undefined || settings.accessMode !== undefined) {
            const parts = [
              settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : "",
              settings.accessMode ?? "",
            ].filter(Boolean);
            await tx.exec(`set transaction ${parts.join(" ")}`);
          }
          resolveOpen({ tx, finish, done });
          if ((await outcome) === "rollback") await tx.rollback();
        })
        .then(() => undefined);
      // A failure before the callback ran (BEGIN itself failed) must reject `begin`.
      done.catch(rejectOpen);
    });
    this.#open = await opened;
  }

  async end(outcome: "commit" | "rollback"): Promise<void> {
    const open = this.#open;
    if (open === undefined) throw new Error("no transaction is open on this connection");
    this.#open = undefined;
    open.finish(outcome);
    await open.done;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const target = this.#open?.tx ?? this.#pglite;
    const parameters = compiledQuery.parameters as unknown[];
    if (parameters.length === 0) {
      // Like node-postgres, a query without parameters goes over the simple protocol, which
      // allows several statements in one string (migration files need that).
      const results = await target.exec(compiledQuery.sql);
      const last = results[results.length - 1];
      return toQueryResult<R>(last?.rows ?? [], last?.affectedRows);
    }
    const result = await target.query<R>(compiledQuery.sql, parameters);
    return toQueryResult<R>(result.rows, result.affectedRows);
  }

  // biome-ignore lint/correctness/useYield: streaming is not supported on PGlite; fail loudly.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on the embedded database");
  }
}

function toQueryResult<R>(rows: ReadonlyArray<unknown>, affectedRows: number | undefined) {
  return {
    rows: rows as R[],
    ...(affectedRows !== undefined ? { numAffectedRows: BigInt(affectedRows) } : {}),
  };
}
