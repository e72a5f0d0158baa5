import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import type { SimulatorOptions } from "../../src/sim/simulator-options.js";
import { tableToRows } from "../../src/values/arrow-decoder.js";
import { readArrowFile } from "../../src/values/arrow-file.js";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import { type CliResult, startCliProcess } from "../helpers/run-cli.js";
import { BACKENDS, type Backend, createTestDatabase } from "../helpers/test-store.js";
import { freePort } from "../helpers/throwaway-postgres.js";

// These tests run the compiled CLI (`npm run build` first) against a simulator in this process,
// which the CLI reaches over loopback. Each test has its own project directory and database.

/** The model's price, per million tokens. */
const PRICE = { input: "0.15", cachedInput: "0.075", output: "0.6" } as const;

interface ProjectConfig {
  readonly simUrl: string;
  readonly documents: number;
  /** Goes into every prompt, so tests never share a request hash. */
  readonly salt: string;
  /** Documents' texts repeat every `distinct` documents (default: all distinct). */
  readonly distinct?: number;
  readonly maxConcurrency?: number;
  readonly maxAttempts?: number;
  readonly maxFailures?: number;
  readonly outageToleranceMs?: number;
}

/** `raw/documents` (N generated documents) → `analyses` (one `ctx.infer` call per document). */
function inferenceProject(config: ProjectConfig): string {
  return `import { asset, defineProject } from "strata";

const config = ${JSON.stringify(config)};

export const documents = asset({
  key: "raw/documents",
  compute: async () =>
    Array.from({ length: config.documents }, (_, i) => ({
      id: \`doc-\${i}\`,
      text: \`\${config.salt} document number \${i % (config.distinct ?? config.documents)}\`,
    })),
});

export const analyses = asset({
  key: "analyses",
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "small",
      id: (doc) => doc.id,
      messages: (doc) => [{ role: "user", content: \`Analyze: \${doc.text}\` }],
      params: { max_tokens: 32, temperature: 0 },
      maxFailures: config.maxFailures ?? 0,
    }),
});

export default defineProject({
  assets: [documents, analyses],
  endpoints: {
    sim: {
      baseURL: config.simUrl,
      apiKeyEnv: "OPENAI_API_KEY",
      maxConcurrency: config.maxConcurrency ?? 32,
      outageToleranceMs: config.outageToleranceMs,
    },
  },
  models: {
    small: {
      endpoint: "sim",
      name: "cli-small",
      price: { inputPerMTok: ${PRICE.input}, cachedInputPerMTok: ${PRICE.cachedInput}, outputPerMTok: ${PRICE.output} },
      maxAttempts: config.maxAttempts ?? 5,
    },
  },
});
`;
}

/** The exact cost of a simulator bill at {@link PRICE}, by hand (BigInt, 1e-12 USD units). */
function priceByHand(bill: {
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}): string {
  const micro = (p: string) => {
    const [whole = "0", fraction = ""] = p.split(".");
    return BigInt(whole + fraction.padEnd(6, "0"));
  };
  const picos =
    BigInt(bill.promptTokens - bill.cachedTokens) * micro(PRICE.input) +
    BigInt(bill.cachedTokens) * micro(PRICE.cachedInput) +
    BigInt(bill.completionTokens) * micro(PRICE.output);
  const digits = picos.toString().padStart(13, "0");
  const fraction = digits.slice(-12).replace(/0+$/, "");
  return `${digits.slice(0, -12)}${fraction === "" ? "" : `.${fraction}`}`;
}

/** `0.500` → `0.5`: decimal strings compared by value. */
function plain(decimal: string): string {
  return decimal.includes(".") ? decimal.replace(/0+$/, "").replace(/\.$/, "") : decimal;
}

interface MaterializeJson {
  runId: string;
  status: string;
  costUsd: string;
  assets: Array<{
    key: string;
    partition: string | null;
    status: string;
    rows: number | null;
    promptTokens: number;
    cachedTokens: number;
    completionTokens: number;
    costUsd: string;
  }>;
}

interface RunJson {
  id: string;
  status: string;
  selection: string;
  startedAt: string;
  finishedAt: string | null;
  costUsd: string;
  error: string | null;
}

/** A project on one backend whose CLI runs get the test's environment. */
interface InferenceProject {
  readonly fixture: ProjectFixture;
  readonly databaseUrl: string | undefined;
  cli(args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  start(args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): ReturnType<typeof startCliProcess>;
}

function parseJson<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

describe("strata materialize with ctx.infer", CLI_TEST_OPTIONS, () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  async function sim(options: SimulatorOptions = {}): Promise<Simulator> {
    const started = await startSimulator({ port: 0, ...options });
    cleanups.push(() => started.close());
    return started;
  }

  async function project(backend: Backend, config: ProjectConfig): Promise<InferenceProject> {
    const fixture = await createProjectFixture(inferenceProject(config), {
      migratedDatabase: backend === "pglite",
    });
    cleanups.push(() => fixture.remove());
    let databaseUrl: string | undefined;
    if (backend === "postgres") {
      const database = await createTestDatabase();
      cleanups.push(() => database.drop());
      databaseUrl = database.url;
    }
    const withDb = (args: ReadonlyArray<string>) =>
      databaseUrl === undefined ? [...args] : ["--database-url", databaseUrl, ...args];
    return {
      fixture,
      databaseUrl,
      cli: (args, env) => fixture.cli(withDb(args), env),
      start: (args, env) =>
        startCliProcess(withDb(args), { cwd: fixture.dir, env, timeoutMs: 120_000 }),
    };
  }

  describe.each(BACKENDS)("on %s", (backend) => {
    it("prints the run's tokens and exact cost per asset with --json, equal to the endpoint's bill", async () => {
      const endpoint = await sim({ latencyMs: 2 });
      const p = await project(backend, {
        simUrl: endpoint.url,
        documents: 40,
        salt: `json-${backend}`,
      });
      const result = await p.cli(["materialize", "--select", "*", "--json"]);
      expect(result.code, result.stderr).toBe(0);
      const json = parseJson<MaterializeJson>(result);
      const bill = endpoint.ledger().models["cli-small"]!;
      expect(bill.calls).toBe(40);
      const cost = priceByHand(bill);

      expect(json).toMatchObject({ runId: expect.any(String), status: "succeeded" });
      expect(plain(json.costUsd)).toBe(cost);
      const byKey = new Map(json.assets.map((a) => [a.key, a]));
      expect([...byKey.keys()].sort()).toEqual(["analyses", "raw/documents"]);
      expect(byKey.get("raw/documents")).toMatchObject({
        partition: null,
        status: "succeeded",
        rows: 40,
        promptTokens: 0,
        cachedTokens: 0,
        completionTokens: 0,
        costUsd: "0",
      });
      const analyses = byKey.get("analyses")!;
      expect(analyses).toMatchObject({
        partition: null,
        status: "succeeded",
        rows: 40,
        promptTokens: bill.promptTokens,
        cachedTokens: bill.cachedTokens,
        completionTokens: bill.completionTokens,
      });
      expect(plain(analyses.costUsd)).toBe(cost);

      // the ledger in the database says the same
      const runs = await p.cli(["runs", "--json"]);
      expect(runs.code).toBe(0);
      const [run] = parseJson<RunJson[]>(runs);
      expect(run).toMatchObject({ id: json.runId, status: "succeeded", selection: "*" });
      expect(plain(run!.costUsd)).toBe(cost);
    });

    it("estimates and pays a request that documents repeat once, and answers the repeats from it", async () => {
      const endpoint = await sim({ latencyMs: 5 });
      const p = await project(backend, {
        simUrl: endpoint.url,
        documents: 122,
        distinct: 27,
        salt: `repeat-${backend}`,
        maxConcurrency: 16,
      });
      const dry = await p.cli(["materialize", "--select", "*", "--dry-run", "--json"]);
      expect(dry.code, dry.stderr).toBe(0);
      const plan = parseJson<{
        steps: Array<{ key: string; inference: { documents: number; cacheHits: number } | null }>;
      }>(dry);
      expect(plan.steps.find((s) => s.key === "analyses")?.inference).toMatchObject({
        documents: 122,
        cacheHits: 95,
      });

      const result = await p.cli(["materialize", "--select", "*", "--json"]);
      expect(result.code, result.stderr).toBe(0);
      const json = parseJson<MaterializeJson>(result);
      const bill = endpoint.ledger();
      expect(bill.requests.total).toBe(27);
      expect(bill.totals.calls).toBe(27);
      const analyses = json.assets.find((a) => a.key === "analyses")!;
      expect(analyses).toMatchObject({
        rows: 122,
        promptTokens: bill.totals.promptTokens,
        completionTokens: bill.totals.completionTokens,
      });
      expect(plain(analyses.costUsd)).toBe(priceByHand(bill.totals));

      const costs = await p.cli(["costs", "--by", "run", "--format", "json"]);
      expect(costs.code, costs.stderr).toBe(0);
      const [row] =
        parseJson<Array<{ calls: number; promptTokens: number; costUsd: string }>>(costs);
      expect(row).toMatchObject({ promptTokens: bill.totals.promptTokens });
      expect(plain(row!.costUsd)).toBe(priceByHand(bill.totals));
    });

    it("never writes the API key anywhere: output, logs, errors, database or files", async () => {
      const secret = "sk-test-SECRET-123";
      const env = { OPENAI_API_KEY: secret };
      const endpoint = await sim({ apiKey: secret, latencyMs: 1 });
      const failing = await sim({ apiKey: secret, errorRate: 1 });
      const p = await project(backend, {
        simUrl: endpoint.url,
        documents: 10,
        salt: `secret-${backend}`,
      });
      const outputs: CliResult[] = [];

      const ok = await p.cli(["materialize", "--select", "*", "--json"], env);
      expect(ok.code).toBe(0);
      expect(endpoint.ledger().totals.calls).toBe(10);
      expect(endpoint.ledger().requests.unauthorized).toBe(0);
      outputs.push(ok);

      // a failing endpoint: errors, retries and a failed run, with stack traces
      await p.fixture.write({
        "strata.config.ts": inferenceProject({
          simUrl: failing.url,
          documents: 10,
          salt: `secret-failing-${backend}`,
          maxAttempts: 2,
        }),
      });
      const failed = await p.cli(["--verbose", "materialize", "--select", "*"], env);
      expect(failed.code).toBe(1);
      expect(failing.ledger().requests.errors).toBe(20);
      expect(failing.ledger().requests.unauthorized).toBe(0);
      outputs.push(failed);
      const runs = await p.cli(["runs", "--json"], env);
      outputs.push(runs);
      const [failedRun] = parseJson<RunJson[]>(runs);
      expect(failedRun!.status).toBe("failed");
      outputs.push(await p.cli(["--verbose", "runs", "show", failedRun!.id], env));

      for (const output of outputs) {
        expect(output.stdout).not.toContain("SECRET");
        expect(output.stderr).not.toContain("SECRET");
      }
      const files = await filesUnder(join(p.fixture.dir, ".strata"));
      if (backend === "pglite")
        expect(files.some((f) => f.includes(join(".strata", "db")))).toBe(true);
      expect(files.some((f) => f.endsWith(".arrow"))).toBe(true);
      for (const file of files) {
        const bytes = await readFile(file);
        expect(bytes.includes(Buffer.from("SECRET")), file).toBe(false);
      }
      if (p.databaseUrl !== undefined) {
        const dump = await dumpSchema(p.databaseUrl, "strata");
        expect(dump).toContain("documents failed, more than maxFailures");
        expect(dump).not.toContain("SECRET");
      }
    });
  });

  it("resumes a SIGKILLed run, paying again only for calls not yet checkpointed", async () => {
    const documents = 1000;
    const maxConcurrency = 32;
    const endpoint = await sim({ latencyMs: 60 });
    const p = await project("pglite", {
      simUrl: endpoint.url,
      documents,
      salt: "killed",
      maxConcurrency,
    });

    const child = p.start(["materialize", "--select", "*", "--json"]);
    // Kill it once about half the documents are billed, measuring the rate it bills at.
    const samples: Array<{ at: number; calls: number }> = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const calls = endpoint.ledger().totals.calls;
        samples.push({ at: performance.now(), calls });
        if (calls >= documents / 2) {
          clearInterval(timer);
          child.child.kill("SIGKILL");
          resolve();
        }
      }, 5);
      child.result.then(
        (r) => {
          clearInterval(timer);
          reject(new Error(`the CLI ended before the kill: ${r.code}\n${r.stderr}`));
        },
        () => {},
      );
    });
    const killed = await child.result;
    expect(killed.signal).toBe("SIGKILL");
    // What the endpoint billed in the 500 ms before the kill: the ledger's 200 ms flush interval
    // plus up to 300 ms for a batch write on a loaded machine.
    const last = samples.at(-1)!;
    const windowStart = samples.find((s) => s.at >= last.at - 500) ?? samples[0]!;
    const billedInWindow = last.calls - windowStart.calls;
    const billedAtKill = endpoint.ledger().totals.calls;

    const runs = await p.cli(["runs", "--json"]);
    expect(runs.code).toBe(0);
    const [run] = parseJson<RunJson[]>(runs);
    expect(run).toMatchObject({ status: "failed" });
    expect(run!.error).toContain(`strata runs resume ${run!.id}`);

    const resumed = await p.cli(["runs", "resume", run!.id, "--json"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const resumedJson = parseJson<MaterializeJson>(resumed);
    expect(resumedJson.status).toBe("succeeded");

    expect(resumedJson.assets.find((a) => a.key === "analyses")).toMatchObject({
      status: "succeeded",
      rows: documents,
    });
    // every document is answered in the resumed run's output (the killed run wrote none)
    const outputDir = join(p.fixture.dir, ".strata", "storage", "analyses", "__all__");
    const outputs = await readdir(outputDir);
    expect(outputs).toHaveLength(1);
    const rows = tableToRows(await readArrowFile(join(outputDir, outputs[0]!)));
    expect(rows).toHaveLength(documents);
    expect(rows.filter((r) => r.status !== "succeeded")).toEqual([]);
    expect(new Set(rows.map((r) => r.id)).size).toBe(documents);

    // Paid twice: only calls answered but not yet written to the ledger when the process died
    // (the ledger flushes every 200 ms) and responses already on the wire.
    const billed = endpoint.ledger().totals.calls;
    const overpaid = billed - documents;
    const bound = maxConcurrency + billedInWindow;
    console.info(
      `kill/resume: ${documents} documents, ${billedAtKill} billed at the kill ` +
        `(${billedInWindow} in its last 500 ms), ${billed} in all: ${overpaid} paid twice ` +
        `(bound ${bound} = maxConcurrency ${maxConcurrency} + the last 500 ms of calls)`,
    );
    expect(overpaid).toBeGreaterThanOrEqual(0);
    expect(overpaid).toBeLessThanOrEqual(bound);
  });

  it("stops at --max-cost with exit 1, and resume with a higher cap finishes without paying twice", async () => {
    const documents = 200;
    const endpoint = await sim({ latencyMs: 5 });
    const p = await project("pglite", {
      simUrl: endpoint.url,
      documents,
      salt: "budget",
      maxConcurrency: 8,
    });

    const stopped = await p.cli(["materialize", "--select", "*", "--max-cost", "0.001"]);
    expect(stopped.code).toBe(1);
    const [run] = parseJson<RunJson[]>(await p.cli(["runs", "--json"]));
    expect(run!.status).toBe("budget_exceeded");
    const spent = plain(run!.costUsd);
    expect(Number(spent)).toBeGreaterThan(0);
    expect(stopped.stderr).toContain(`spent $${spent}`);
    expect(stopped.stderr).toContain(`strata runs resume ${run!.id} --max-cost`);
    const paidBefore = endpoint.ledger().totals.calls;
    expect(paidBefore).toBeLessThan(documents);
    expect(plain(priceByHand(endpoint.ledger().totals))).toBe(spent);

    const resumed = await p.cli(["runs", "resume", run!.id, "--max-cost", "100", "--json"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(parseJson<MaterializeJson>(resumed).status).toBe("succeeded");
    // every document was paid for exactly once across both runs
    expect(endpoint.ledger().totals.calls).toBe(documents);
  });

  it("fails the run with exit 1 and names the endpoint and its URL when its server is not running", async () => {
    const url = `http://127.0.0.1:${await freePort()}/v1`;
    // an hour of outage tolerance: only giving up on an endpoint that never answered ends it
    const p = await project("pglite", {
      simUrl: url,
      documents: 200,
      salt: "refused",
      outageToleranceMs: 3_600_000,
    });
    const result = await p.cli(["materialize", "--select", "*"]);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain(`endpoint "sim" at ${url} cannot be reached`);
    expect(result.stderr).toContain("ECONNREFUSED");
    const runs = parseJson<RunJson[]>(await p.cli(["runs", "--json"]));
    expect(runs.map((r) => r.status)).toEqual(["failed"]);
    expect(runs[0]!.error).toContain(`endpoint "sim" at ${url} cannot be reached`);
  });

  it("rejects a --max-cost that is not a non-negative amount with exit 2", async () => {
    const endpoint = await sim();
    const p = await project("pglite", { simUrl: endpoint.url, documents: 3, salt: "usage" });
    for (const value of ["-1", "abc"]) {
      const result = await p.cli(["materialize", "--select", "*", "--max-cost", value]);
      expect(result.code, value).toBe(2);
      expect(result.stderr).toContain("--max-cost");
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(endpoint.ledger().requests.total).toBe(0);
  });
});

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Every row of every table of `schema`, as text: what a pg_dump of the data would show. */
async function dumpSchema(url: string, schema: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tables = await client.query<{ table_name: string }>(
      "select table_name from information_schema.tables where table_schema = $1",
      [schema],
    );
    const parts: string[] = [];
    for (const { table_name } of tables.rows) {
      const rows = await client.query(`select * from ${schema}."${table_name}"`);
      parts.push(`-- ${table_name}\n${JSON.stringify(rows.rows)}`);
    }
    return parts.join("\n");
  } finally {
    await client.end();
  }
}
