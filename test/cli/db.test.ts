import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readMigrations } from "../../src/store/migrator.js";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { CLI_PATH, type CliResult, runCliInProcess, runCliProcess } from "../helpers/run-cli.js";
import { createTempDir } from "../helpers/temp-dir.js";
import { BACKENDS, type Backend, createTestDatabase } from "../helpers/test-store.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly).

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  }
).version;

const MIGRATION_NAMES = (await readMigrations()).map((m) => m.name);

interface StatusJson {
  location: string;
  migrations: Array<{ name: string; status: string; appliedAt: string | null }>;
}

function parseStatus(result: CliResult): StatusJson {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as StatusJson;
}

function stderrLines(result: CliResult): string[] {
  return result.stderr.split("\n").filter((line) => line !== "");
}

/** A project directory and the database the CLI uses there, for one test. */
interface DbFixture {
  readonly dir: string;
  /** Where `strata db status` says the data lives. */
  readonly location: RegExp;
  /** Runs `strata ...` in the project directory against the fixture's database. */
  cli(args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /** Opens the fixture's database in this process (the CLI must not be running). */
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

async function createDbFixture(backend: Backend): Promise<DbFixture> {
  const temp = await createTempDir("strata-cli-db-");
  const dir = realpathSync(temp.path);
  if (backend === "pglite") {
    return {
      dir,
      location: new RegExp(`^embedded database at ${escapeRegExp(embeddedDataDir(dir))}$`),
      cli: (args, env) => runCliInProcess(args, { cwd: dir, env }),
      open: () => openEmbeddedStore(embeddedDataDir(dir)),
      dispose: temp.remove,
    };
  }
  const database = await createTestDatabase();
  const name = new URL(database.url).pathname.slice(1);
  return {
    dir,
    location: new RegExp(`^Postgres at [^ ]+:\\d+/${escapeRegExp(name)}$`),
    cli: (args, env) =>
      runCliInProcess(["--database-url", database.url, ...args], { cwd: dir, env }),
    open: () => openPostgresStore(database.url),
    dispose: async () => {
      await database.drop();
      await temp.remove();
    },
  };
}

describe("strata", () => {
  let temp: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    temp = await createTempDir("strata-cli-");
  });
  afterEach(() => temp.remove());

  it("prints the version of the package with --version", async () => {
    const result = await runCliProcess(["--version"], { cwd: temp.path });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(PACKAGE_VERSION);
  });

  it("exits 2 on an unknown command and names it", async () => {
    const result = await runCliProcess(["frobnicate"], { cwd: temp.path });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("frobnicate");
    expect(result.stdout).toBe("");
  });

  it("exits 2 on an unknown option and names it", async () => {
    const result = await runCliInProcess(["db", "status", "--no-such-option"], { cwd: temp.path });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--no-such-option");
    expect(existsSync(join(temp.path, ".strata"))).toBe(false);
  });
});

describe.each(BACKENDS)("strata db on %s", (backend) => {
  let fixture: DbFixture;
  beforeEach(async () => {
    fixture = await createDbFixture(backend);
  });
  afterEach(() => fixture.dispose());

  it("lists every migration as pending on a new database, then applies them once", async () => {
    const before = parseStatus(await fixture.cli(["db", "status", "--json"]));
    expect(before.location).toMatch(fixture.location);
    expect(before.migrations.map((m) => m.name)).toEqual(MIGRATION_NAMES);
    expect(before.migrations).toContainEqual({
      name: "0001_init.sql",
      status: "pending",
      appliedAt: null,
    });
    expect(before.migrations.every((m) => m.status === "pending")).toBe(true);

    const text = await fixture.cli(["db", "status"]);
    expect(text.code).toBe(0);
    expect(text.stdout.split("\n")[0]).toMatch(fixture.location);
    expect(text.stdout).toMatch(/^\s+pending\s+0001_init\.sql$/m);

    const migrated = await fixture.cli(["db", "migrate"]);
    expect(migrated.stderr).toBe("");
    expect(migrated.code).toBe(0);
    expect(migrated.stdout).toMatch(/: applied .*0001_init\.sql/);

    const after = parseStatus(await fixture.cli(["db", "status", "--json"]));
    expect(after.migrations.map((m) => [m.name, m.status])).toEqual(
      MIGRATION_NAMES.map((name) => [name, "applied"]),
    );

    const again = await fixture.cli(["db", "migrate"]);
    expect(again.stderr).toBe("");
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toMatch(/: up to date$/);
    // nothing was applied a second time
    expect(parseStatus(await fixture.cli(["db", "status", "--json"]))).toEqual(after);
  }, 120_000);

  it("refuses a database whose applied migration was edited, naming the file, with exit 2", async () => {
    expect((await fixture.cli(["db", "migrate"])).code).toBe(0);
    // simulate an edit of the shipped file: the recorded checksum no longer matches it
    const store = await fixture.open();
    try {
      await sql`update strata.migrations set checksum = 'x' where name = '0001_init.sql'`.execute(
        store.db,
      );
    } finally {
      await store.close();
    }

    for (const command of ["status", "migrate"]) {
      const result = await fixture.cli(["db", command]);
      expect(result.code, `db ${command}`).toBe(2);
      expect(result.stdout).toBe("");
      const lines = stderrLines(result);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^strata: migration "0001_init\.sql" was edited after it was applied/,
      );
      expect(lines[0]).toContain("new migration");
    }
  }, 120_000);
});

describe("strata db with an unreachable Postgres", () => {
  let temp: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    temp = await createTempDir("strata-cli-");
  });
  afterEach(() => temp.remove());

  const URL_WITH_PASSWORD = "postgres://nobody:secret@127.0.0.1:1/x";

  it("exits 2 with one line naming host and port and never the password", async () => {
    const result = await runCliInProcess(["db", "status"], {
      cwd: temp.path,
      env: { DATABASE_URL: URL_WITH_PASSWORD },
    });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    const lines = stderrLines(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^strata: cannot reach Postgres at 127\.0\.0\.1:1\b/);
    expect(result.stderr).not.toContain("secret");
    // the embedded database was not used instead
    expect(existsSync(join(temp.path, ".strata"))).toBe(false);
  });

  it("prints a stack with --verbose that does not contain the password either", async () => {
    const result = await runCliInProcess(["--verbose", "db", "migrate"], {
      cwd: temp.path,
      env: { DATABASE_URL: URL_WITH_PASSWORD },
    });
    expect(result.code).toBe(2);
    const lines = stderrLines(result);
    expect(lines[0]).toMatch(/^strata: cannot reach Postgres at 127\.0\.0\.1:1\b/);
    expect(lines.length).toBeGreaterThan(1);
    expect(result.stderr).toMatch(/^\s+at /m);
    expect(result.stderr).not.toContain("secret");
  });

  it("takes --database-url over DATABASE_URL", async () => {
    const result = await runCliInProcess(["--database-url", URL_WITH_PASSWORD, "db", "status"], {
      cwd: temp.path,
      env: { DATABASE_URL: "postgres://other:hunter2@127.0.0.1:2/y" },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("127.0.0.1:1");
    expect(result.stderr).not.toMatch(/secret|hunter2|127\.0\.0\.1:2/);
  });
});

describe("strata db on an embedded database that another process holds", () => {
  let temp: { path: string; remove(): Promise<void> };
  let holder: ChildProcess | undefined;
  beforeEach(async () => {
    temp = await createTempDir("strata-cli-lock-");
  });
  afterEach(async () => {
    if (holder !== undefined && holder.exitCode === null && holder.signalCode === null) {
      holder.kill("SIGKILL");
      await new Promise((resolve) => holder?.once("exit", resolve));
    }
    holder = undefined;
    await temp.remove();
  });

  it("refuses with the holder's pid, changes nothing, and opens cleanly once the holder is killed", async () => {
    const dir = realpathSync(temp.path);
    const dataDir = embeddedDataDir(dir);
    const cli = (args: ReadonlyArray<string>) => runCliInProcess(args, { cwd: dir });

    expect((await cli(["db", "migrate"])).code).toBe(0);
    const migrated = parseStatus(await cli(["db", "status", "--json"]));

    holder = await startHolder(dataDir);
    const pid = holder.pid;
    const snapshot = hashTree(dataDir);

    for (const args of [
      ["db", "status"],
      ["db", "migrate"],
    ]) {
      const refused = await cli(args);
      expect(refused.code, args.join(" ")).toBe(2);
      expect(refused.stdout).toBe("");
      expect(stderrLines(refused)).toEqual([
        `strata: embedded database at ${dataDir} is in use by pid ${pid}; set DATABASE_URL to share a Postgres server`,
      ]);
    }
    expect(hashTree(dataDir)).toBe(snapshot);
    expect(readFileSync(`${dataDir}.lock`, "utf8")).toMatch(new RegExp(`^${pid}:`));

    holder.kill("SIGKILL");
    await new Promise((resolve) => holder?.once("exit", resolve));

    // the dead holder's lock is broken and the database opens with its data intact
    const after = parseStatus(await cli(["db", "status", "--json"]));
    expect(after).toEqual(migrated);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
    const again = await cli(["db", "migrate"]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toMatch(/: up to date$/);
  }, 120_000);
});

/** Starts a process that opens the embedded database with the compiled store and keeps it open. */
async function startHolder(dataDir: string): Promise<ChildProcess> {
  const storeModule = pathToFileURL(join(dirname(CLI_PATH), "..", "store", "store.js")).href;
  const script = [
    `const { openEmbeddedStore } = await import(${JSON.stringify(storeModule)});`,
    `await openEmbeddedStore(${JSON.stringify(dataDir)});`,
    `process.stdout.write("ready\\n");`,
    "setInterval(() => {}, 1 << 30);",
  ].join("\n");
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (stdout.includes("ready\n")) resolve();
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.once("exit", (code) =>
      reject(new Error(`the holder exited with ${code} before opening the database: ${stderr}`)),
    );
  });
  return child;
}

/** A hash of every file's path and content under `dir`. */
function hashTree(dir: string): string {
  const hash = createHash("sha256");
  const walk = (path: string) => {
    for (const name of readdirSync(path).sort()) {
      const child = join(path, name);
      if (statSync(child).isDirectory()) walk(child);
      else hash.update(`${child}\0`).update(readFileSync(child));
    }
  };
  walk(dir);
  return hash.digest("hex");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
