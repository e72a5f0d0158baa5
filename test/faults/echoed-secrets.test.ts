import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { createProjectFixture, type ProjectFixture } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { createTestDatabase } from "../helpers/test-store.js";

// An endpoint that echoes the API key it was sent (a 401 that quotes the Authorization header,
// a 400 and a 500 quoting it, an HTML page of a proxy, an answer repeating it) and a compute that
// throws an error quoting the key and the database URL: strata knows both secrets, so neither
// may reach a table, a file or what the CLI prints. The compiled CLI runs (`npm run build`
// first); the database is Postgres when TEST_DATABASE_URL is set (its URL then carries a
// password, which trust authentication ignores), else the embedded one.

const POSTGRES = process.env.TEST_DATABASE_URL !== undefined;
const KEY = `sk-echoed-${randomBytes(12).toString("hex")}`;
const DB_PASSWORD = `pw-${randomBytes(10).toString("hex")}`;

/** Answers each document (its prompt is its id) the way its id says, quoting the key. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  let body = "";
  req.setEncoding("utf8").on("data", (chunk: string) => {
    body += chunk;
  });
  req.on("end", () => {
    const request = JSON.parse(body) as { model: string; messages: { content: string }[] };
    const id = request.messages.at(-1)!.content;
    const auth = req.headers.authorization ?? "";
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const error = (status: number, message: string) =>
      json(status, { error: { message, type: "invalid_request_error", code: null } });
    if (id === "echo-401") {
      error(401, `Incorrect API key provided: ${auth.replace(/^Bearer /, "")} (${auth})`);
    } else if (id === "echo-400") {
      error(400, `bad request from ${auth}`);
    } else if (id === "echo-500") {
      error(500, `upstream failed for ${auth}`);
    } else if (id === "echo-html") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`<html><body>proxy error; you sent ${auth}</body></html>`);
    } else {
      const content = id === "echo-answer" ? `you sent ${auth}` : `answer to ${id}`;
      json(200, {
        id: `chatcmpl-${id}`,
        object: "chat.completion",
        created: 1_700_000_000,
        model: request.model,
        choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
        usage: { prompt_tokens: 20, completion_tokens: 5, total_tokens: 25 },
      });
    }
  });
}

function project(url: string): string {
  return `import { asset, defineProject } from "strata";

const ids = ["echo-401", "echo-400", "echo-500", "echo-html", "echo-answer", "ok"];

export const documents = asset({ key: "documents", compute: async () => ids.map((id) => ({ id })) });

export const answers = asset({
  key: "answers",
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "m",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: d.id }],
      maxFailures: 4,
    }),
});

export const leaky = asset({
  key: "leaky",
  compute: async () => {
    throw new Error(\`cannot sync with key \${process.env.STRATA_TEST_KEY} to \${process.env.DATABASE_URL}\`);
  },
});

export default defineProject({
  assets: [documents, answers, leaky],
  endpoints: { echo: { baseURL: ${JSON.stringify(url)}, apiKeyEnv: "STRATA_TEST_KEY" } },
  models: {
    m: { endpoint: "echo", name: "m", maxAttempts: 2, price: { inputPerMTok: 1, outputPerMTok: 2 } },
  },
});
`;
}

let server: Server;
let fixture: ProjectFixture;
let databaseUrl: string | undefined;
let dropDatabase: (() => Promise<void>) | undefined;

beforeAll(async () => {
  server = createServer(echo);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  fixture = await createProjectFixture(project(url), { migratedDatabase: !POSTGRES });
  if (POSTGRES) {
    const database = await createTestDatabase();
    const withPassword = new URL(database.url);
    withPassword.password = DB_PASSWORD;
    databaseUrl = withPassword.toString();
    dropDatabase = database.drop;
  }
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await dropDatabase?.();
  await fixture?.remove();
});

/**
 * The CLI with the key in its environment (and the database URL, when Postgres), in a process of
 * its own: the project's compute reads them from the process's environment.
 */
function cli(args: ReadonlyArray<string>): Promise<CliResult> {
  return fixture.cliProcess(args, {
    STRATA_TEST_KEY: KEY,
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
  });
}

async function withStore<T>(body: (store: Store) => Promise<T>): Promise<T> {
  const store =
    databaseUrl === undefined
      ? await openEmbeddedStore(embeddedDataDir(fixture.dir))
      : await openPostgresStore(databaseUrl);
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}

describe("secrets an endpoint or a compute echoes", () => {
  it("reach no table, no file and nothing the CLI prints", { timeout: 180_000 }, async () => {
    const outputs: CliResult[] = [];
    const run = await cli(["--verbose", "materialize", "--select", "*", "--json"]);
    outputs.push(run);
    expect(run.code, run.stderr).toBe(1);
    const result = JSON.parse(run.stdout) as {
      runId: string;
      assets: Array<{ key: string; status: string; error: string | null }>;
    };
    expect(result.assets.map((a) => [a.key, a.status])).toEqual(
      expect.arrayContaining([
        ["answers", "succeeded"],
        ["leaky", "failed"],
      ]),
    );
    // what the endpoint and the compute said still reaches the user, without the secrets
    expect(result.assets.find((a) => a.key === "leaky")!.error).toMatch(
      /cannot sync with key \[redacted\]/,
    );
    outputs.push(await cli(["materialize", "--select", "answers", "--no-cache"]));
    for (const args of [
      ["--verbose", "runs", "show", result.runId],
      ["runs", "show", result.runId, "--json"],
      ["runs", "--json"],
      ["costs", "--by", "document", "--format", "csv"],
    ]) {
      outputs.push(await cli(args));
    }
    // an unreachable database: its password is in no message or stack either
    outputs.push(
      await fixture.cli([
        "--verbose",
        "--database-url",
        `postgres://strata:${DB_PASSWORD}@127.0.0.1:1/nowhere`,
        "runs",
      ]),
    );
    for (const output of outputs) {
      for (const secret of [KEY, DB_PASSWORD]) {
        expect(output.stdout).not.toContain(secret);
        expect(output.stderr).not.toContain(secret);
      }
    }

    const files = await readdir(join(fixture.dir, ".strata"), {
      recursive: true,
      withFileTypes: true,
    });
    const arrowFiles = files.filter((f) => f.isFile() && f.name.endsWith(".arrow"));
    expect(arrowFiles.length).toBeGreaterThan(0);
    for (const file of files.filter((f) => f.isFile())) {
      const path = join(file.parentPath, file.name);
      const text = (await readFile(path)).toString("latin1");
      expect(text.includes(KEY), path).toBe(false);
      expect(text.includes(DB_PASSWORD), path).toBe(false);
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
    const calls = rows.filter((r) => r.startsWith("inference_calls:"));
    expect(calls.some((r) => r.includes("Incorrect API key provided: [redacted]"))).toBe(true);
    expect(calls.some((r) => r.includes("you sent Bearer [redacted]"))).toBe(true);
    for (const row of rows) {
      expect(row.includes(KEY), row).toBe(false);
      expect(row.includes(DB_PASSWORD), row).toBe(false);
    }
  });
});
