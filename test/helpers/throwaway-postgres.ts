import { execFile } from "node:child_process";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * A Postgres server of one test's own, in a temp dir, that the test may stop, start and restart
 * (never the shared server on 5432: other tests use it).
 */
export interface ThrowawayPostgres {
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth). */
  readonly url: string;
  start(): Promise<void>;
  /** `pg_ctl stop -m fast`: sessions are terminated, the server is down until `start()`. */
  stop(): Promise<void>;
  /** `pg_ctl restart -m fast`: sessions are terminated, the server comes back on the same port. */
  restart(): Promise<void>;
  /** Stops the server (if running) and removes its directory. */
  dispose(): Promise<void>;
}

/** Whether this machine can run a throwaway server: the Postgres binaries and a `postgres` user. */
export async function throwawayPostgresAvailable(): Promise<boolean> {
  try {
    await bindir();
    if (userInfo().uid === 0) await run("id", ["-u", "postgres"]);
    return true;
  } catch {
    return false;
  }
}

let bindirPromise: Promise<string> | undefined;

function bindir(): Promise<string> {
  bindirPromise ??= run("pg_config", ["--bindir"]).then((r) => r.stdout.trim());
  return bindirPromise;
}

/** A free TCP port on 127.0.0.1 (free when asked; the server binds it right after). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs a Postgres binary as the `postgres` user (as is, when not root). */
async function asPostgres(binary: string, args: ReadonlyArray<string>): Promise<string> {
  const path = join(await bindir(), binary);
  const [command, argv] =
    userInfo().uid === 0 ? ["runuser", ["-u", "postgres", "--", path, ...args]] : [path, [...args]];
  try {
    const { stdout } = await run(command, argv, { timeout: 60_000 });
    return stdout;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`${binary} ${args.join(" ")} failed: ${e.stderr || e.message}`);
  }
}

/**
 * `initdb -A trust -U postgres` into a new temp dir owned by `postgres`, started with `pg_ctl`
 * on a free port of 127.0.0.1 (its socket in the same dir).
 *
 * @example
 * const pg = await startThrowawayPostgres();
 * try { await pg.restart(); } finally { await pg.dispose(); }
 */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const dir = await mkdtemp(join(tmpdir(), "strata-throwaway-pg-"));
  const data = join(dir, "data");
  const log = join(dir, "server.log");
  if (userInfo().uid === 0) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    await chown(dir, uid, gid);
  }
  await asPostgres("initdb", ["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D", data]);
  let port = 0;
  let running = false;
  const options = () =>
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = async () => {
    await asPostgres("pg_ctl", ["-D", data, "-l", log, "-o", options(), "-w", "-t", "60", "start"]);
    running = true;
  };
  // A port picked free can be taken before the server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 5) throw error;
    }
  }
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    async stop() {
      await asPostgres("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
      running = false;
    },
    async restart() {
      await asPostgres("pg_ctl", [
        "-D",
        data,
        "-l",
        log,
        "-o",
        options(),
        "-m",
        "fast",
        "-w",
        "-t",
        "60",
        "restart",
      ]);
      running = true;
    },
    async dispose() {
      if (running) {
        await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
        running = false;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
