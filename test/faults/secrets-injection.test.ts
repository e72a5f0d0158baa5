import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { createProjectFixture, type ProjectFixture } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { createTestDatabase } from "../helpers/test-store.js";

// API keys come only from the environment and are written nowhere; strings that look like SQL,
// fed through every CLI input, reach the database only as parameters. The compiled CLI runs
// (`npm run build` first) against a simulator in this process that demands the key. The
// database is Postgres when TEST_DATABASE_URL is set, else the embedded one (one process at a
// time).

const POSTGRES = process.env.TEST_DATABASE_URL !== undefined;
const KEY = `sk-strata-secret-${randomBytes(12).toString("hex")}`;
const WRONG_KEY = `sk-strata-wrong-${randomBytes(12).toString("hex")}`;
const INJECTION = "'; drop schema strata cascade; --";

function project(simUrl: string): string {
  return `import { asset, defineProject, staticPartitions } from "strata";

export const documents = asset({
  key: "raw/documents",
  partitions: staticPartitions(["en", "de"]),
  compute: async (ctx) => [1, 2].map((i) => ({ id: \`\${ctx.partitionKey}-\${i}\`, text: \`\${ctx.partitionKey} text \${i}\` })),
});

export const analyses = asset({
  key: "analyses",
  deps: { documents },
  partitions: staticPartitions(["en", "de"]),
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "small",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: \`Analyze \${d.text}\` }],
      params: { max_tokens: 8 },
    }),
});

export default defineProject({
  assets: [documents, analyses],
  endpoints: { sim: { baseURL: ${JSON.stringify(simUrl)}, apiKeyEnv: "STRATA_TEST_KEY" } },
  models: {
    small: {
      endpoint: "sim",
      name: "m",
      price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
      maxAttempts: 2,
    },
  },
});
`;
}

let sim: Simulator;
let fixture: ProjectFixture;
let databaseUrl: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;
let queue: Promise<unknown> = Promise.resolve();

/** Runs the CLI; on the embedded database one process at a time. */
function cli(args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const run = () =>
    fixture.cli(databaseUrl === undefined ? args : ["--database-url", databaseUrl, ...args], env);
  if (POSTGRES) return run();
  const next = queue.then(run, run);
  queue = next.catch(() => {});
  return next;
}

async function withStore<T>(body: (store: Store) => Promise<T>): Promise<T> {
  const open = () =>
    databaseUrl === undefined
      ? openEmbeddedStore(embeddedDataDir(fixture.dir))
      : openPostgresStore(databaseUrl);
  const task = async () => {
    const store = await open();
    try {
      return await body(store);
    } finally {
      await store.close();
    }
  };
  if (POSTGRES) return task();
  const next = queue.then(task, task);
  queue = next.catch(() => {});
  return next;
}

beforeAll(async () => {
  sim = await startSimulator({ port: 0, apiKey: KEY });
  fixture = await createProjectFixture(project(sim.url), { migratedDatabase: !POSTGRES });
  if (POSTGRES) {
    const database = await createTestDatabase();
    databaseUrl = database.url;
    dropDatabase = database.drop;
  }
});

afterAll(async () => {
  await sim?.close();
  await dropDatabase?.();
  await fixture?.remove();
});

/** Every file under `dir`, as text (binary files too: a key would show up in them verbatim). */
async function filesUnder(dir: string): Promise<Array<{ path: string; text: string }>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return Promise.all(
    entries
      .filter((e) => e.isFile())
      .map(async (e) => {
        const path = join(e.parentPath, e.name);
        return { path, text: (await readFile(path)).toString("latin1") };
      }),
  );
}

describe("API keys", () => {
  it("come from the environment and never reach the database, files, logs or --verbose stacks", {
    timeout: 180_000,
  }, async () => {
    const outputs: CliResult[] = [];
    const ok = await cli(
      ["--verbose", "materialize", "--select", "*", "--partition", "en", "--json"],
      { STRATA_TEST_KEY: KEY },
    );
    outputs.push(ok);
    expect(ok.code, ok.stderr).toBe(0);
    expect(sim.ledger().totals.calls).toBeGreaterThan(0);

    // a wrong key: the endpoint answers 401, the documents fail, the run fails
    const wrong = await cli(
      ["--verbose", "materialize", "--select", "*", "--partition", "de", "--json", "--no-cache"],
      { STRATA_TEST_KEY: WRONG_KEY },
    );
    outputs.push(wrong);
    expect(wrong.code, wrong.stderr).toBe(1);
    const failedRun = (JSON.parse(wrong.stdout) as { runId: string; status: string }).runId;

    // no key at all (new documents: nothing comes from the ledger's cache)
    const missing = await cli([
      "--verbose",
      "materialize",
      "--select",
      "analyses",
      "--partition",
      "de",
    ]);
    outputs.push(missing);
    expect(missing.code).not.toBe(0);

    for (const args of [
      ["--verbose", "runs", "show", failedRun],
      ["runs", "show", failedRun, "--json"],
      ["runs", "--json"],
      ["costs", "--by", "document", "--format", "csv"],
      ["--verbose", "runs", "resume", failedRun],
    ]) {
      outputs.push(await cli(args, { STRATA_TEST_KEY: WRONG_KEY }));
    }

    for (const output of outputs) {
      for (const key of [KEY, WRONG_KEY]) {
        expect(output.stdout).not.toContain(key);
        expect(output.stderr).not.toContain(key);
      }
    }
    // the 401 reached the user, without the key
    expect(wrong.stderr + wrong.stdout).toMatch(/401|api key|unauthori[sz]ed|authentication/i);

    for (const file of await filesUnder(join(fixture.dir, ".strata"))) {
      expect(file.text.includes(KEY), file.path).toBe(false);
      expect(file.text.includes(WRONG_KEY), file.path).toBe(false);
    }
    const rows = await withStore(async (store) => {
      const tables = await sql<{ name: string }>`
        select table_name as name from information_schema.tables
        where table_schema = 'strata' and table_type = 'BASE TABLE'`.execute(store.db);
      const texts: string[] = [];
      for (const { name } of tables.rows) {
        const dumped = await sql<{ row: string }>`
          select row_to_json(t)::text as row from ${sql.table(`strata.${name}`)} t`.execute(
          store.db,
        );
        texts.push(...dumped.rows.map((r) => `${name}: ${r.row}`));
      }
      return texts;
    });
    expect(rows.some((r) => r.startsWith("inference_calls:"))).toBe(true);
    for (const row of rows) {
      expect(row.includes(KEY), row).toBe(false);
      expect(row.includes(WRONG_KEY), row).toBe(false);
    }
  });
});

/** Every CLI input that names something the database is asked about. */
const INJECTIONS: ReadonlyArray<{ readonly input: string; readonly args: ReadonlyArray<string> }> =
  [
    { input: "--select (materialize)", args: ["materialize", "--select", INJECTION] },
    { input: "--select quoted key", args: ["materialize", "--select", `key:"${INJECTION}"`] },
    { input: "--select (list)", args: ["list", "--select", `key:"${INJECTION}"`, "--json"] },
    { input: "--select (lineage)", args: ["lineage", "--select", `key:"${INJECTION}"`] },
    {
      input: "--partition",
      args: ["materialize", "--select", "raw/documents", "--partition", INJECTION],
    },
    {
      input: "--partition-range",
      args: ["materialize", "--select", "raw/documents", "--partition-range", `${INJECTION}..en`],
    },
    { input: "--by", args: ["costs", "--by", INJECTION] },
    { input: "--run", args: ["costs", "--run", INJECTION] },
    { input: "--model", args: ["costs", "--model", INJECTION, "--format", "json"] },
    { input: "--asset", args: ["costs", "--asset", `key:"${INJECTION}"`, "--format", "json"] },
    { input: "--since", args: ["costs", "--since", INJECTION] },
    { input: "runs show", args: ["runs", "show", INJECTION] },
    { input: "runs show --lineage", args: ["runs", "show", INJECTION, "--lineage"] },
    { input: "runs resume", args: ["runs", "resume", INJECTION] },
    { input: "runs --limit", args: ["runs", "--limit", INJECTION] },
    { input: "lineage <asset>", args: ["lineage", INJECTION] },
    { input: "--project", args: ["--project", `${INJECTION}.ts`, "list"] },
  ];

describe("SQL-looking input", () => {
  let runsBefore = 0;

  beforeAll(async () => {
    // a recorded run, so that dropped or emptied tables would show
    const seeded = await cli(["materialize", "--select", "raw/documents", "--partition", "en"]);
    expect(seeded.code, seeded.stderr).toBe(0);
    runsBefore = await withStore(async (store) => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from strata.runs`.execute(store.db);
      return rows[0]!.n;
    });
  }, 120_000);

  describe.concurrent("through every CLI input", { timeout: 120_000 }, () => {
    it.each(INJECTIONS.map((i) => [i.input, i.args] as const))(
      "passes %s to the database only as a parameter",
      async (_input, args) => {
        const result = await cli(args, { STRATA_TEST_KEY: KEY });
        expect([0, 1, 2], result.stderr).toContain(result.code);
        expect(result.stderr).not.toMatch(/syntax error at or near|unexpected error/);
      },
    );

    it.skipIf(!POSTGRES)(
      "passes a database name that looks like SQL in --database-url",
      async () => {
        const base = new URL(process.env.TEST_DATABASE_URL!);
        for (const name of [INJECTION, encodeURIComponent(INJECTION)]) {
          const url = `${base.protocol}//${base.username}@${base.host}/${name}`;
          const result = await fixture.cli(["--database-url", url, "runs"]);
          expect(result.code, result.stderr).toBe(2);
          expect(result.stderr).not.toMatch(/unexpected error/);
        }
      },
    );
  });

  it("leaves the schema, its tables and its rows intact, and `db status` clean", async () => {
    const state = await withStore(async (store) => {
      const { rows } = await sql<Record<string, string | null>>`
        select to_regclass('strata.runs')::text as runs,
               to_regclass('strata.materializations')::text as materializations,
               to_regclass('strata.inference_calls')::text as inference_calls,
               to_regclass('strata.assets')::text as assets,
               to_regclass('strata.asset_deps')::text as asset_deps,
               to_regclass('strata.migrations')::text as migrations,
               to_regclass('strata.cost_by_asset')::text as cost_by_asset`.execute(store.db);
      const runs = await sql<{ n: number }>`
        select count(*)::int as n from strata.runs`.execute(store.db);
      return { regclasses: rows[0]!, runs: runs.rows[0]!.n };
    });
    for (const [name, regclass] of Object.entries(state.regclasses)) {
      expect(regclass, name).toBe(`strata.${name}`);
    }
    expect(state.runs).toBeGreaterThanOrEqual(runsBefore);
    const status = await cli(["db", "status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    const migrations = (JSON.parse(status.stdout) as { migrations: Array<{ status: string }> })
      .migrations;
    expect(migrations.length).toBeGreaterThan(0);
    expect(migrations.every((m) => m.status === "applied")).toBe(true);
  });
});
