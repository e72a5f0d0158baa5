import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import type { SimulatorOptions } from "../../src/sim/simulator-options.js";
import { createProjectFixture, type ProjectFixture } from "./project-fixture.js";
import { type CliResult, startCliProcess } from "./run-cli.js";
import { type Backend, createTestDatabase } from "./test-store.js";

/** What the project of {@link inferenceProjectSource} is made of. */
export interface InferenceProjectConfig {
  readonly simUrl: string;
  readonly documents: number;
  /** Goes into every prompt, so tests never share a request hash. */
  readonly salt: string;
  readonly maxConcurrency?: number;
}

/**
 * `raw/documents` (N generated documents) → `analyses` (one `ctx.infer` call per document,
 * model `small` on the simulator, priced $0.15/$0.075/$0.60 per million tokens).
 */
export function inferenceProjectSource(config: InferenceProjectConfig): string {
  return `import { asset, defineProject } from "strata";

const config = ${JSON.stringify(config)};

export const documents = asset({
  key: "raw/documents",
  compute: async () =>
    Array.from({ length: config.documents }, (_, i) => ({
      id: \`doc-\${i}\`,
      text: \`\${config.salt} document number \${i}\`,
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
    }),
});

export default defineProject({
  assets: [documents, analyses],
  endpoints: { sim: { baseURL: config.simUrl, maxConcurrency: config.maxConcurrency ?? 8 } },
  models: {
    small: {
      endpoint: "sim",
      name: "resume-small",
      price: { inputPerMTok: 0.15, cachedInputPerMTok: 0.075, outputPerMTok: 0.6 },
    },
  },
});
`;
}

/** A project with an inference step, on one backend, against its own simulator. */
export interface InferenceProject {
  readonly fixture: ProjectFixture;
  readonly sim: Simulator;
  /** The database arguments the CLI gets (`--database-url URL` on Postgres). */
  readonly dbArgs: ReadonlyArray<string>;
  cli(args: ReadonlyArray<string>): Promise<CliResult>;
  /** Starts the CLI without waiting for it (to send it signals). */
  start(args: ReadonlyArray<string>): ReturnType<typeof startCliProcess>;
  /** Calls the simulator has billed so far. */
  billed(): number;
  dispose(): Promise<void>;
}

/**
 * Starts a simulator and makes a project for it on `backend` (the embedded database, migrated
 * from the template, or a new Postgres database).
 *
 * @example
 * const p = await createInferenceProject("pglite", { documents: 40, salt: "x" });
 */
export async function createInferenceProject(
  backend: Backend,
  config: Omit<InferenceProjectConfig, "simUrl">,
  simOptions: SimulatorOptions = {},
): Promise<InferenceProject> {
  const sim = await startSimulator({ port: 0, ...simOptions });
  const fixture = await createProjectFixture(
    inferenceProjectSource({ ...config, simUrl: sim.url }),
    { migratedDatabase: backend === "pglite" },
  );
  const database = backend === "postgres" ? await createTestDatabase() : undefined;
  const dbArgs = database === undefined ? [] : ["--database-url", database.url];
  return {
    fixture,
    sim,
    dbArgs,
    cli: (args) => fixture.cli([...dbArgs, ...args]),
    start: (args) =>
      startCliProcess([...dbArgs, ...args], { cwd: fixture.dir, timeoutMs: 120_000 }),
    billed: () => sim.ledger().totals.calls,
    dispose: async () => {
      await sim.close();
      await database?.drop();
      await fixture.remove();
    },
  };
}

/** Resolves once `done()` holds (polled on a short timer); rejects if `exited` settles first. */
export async function waitUntil(
  done: () => boolean,
  exited: Promise<unknown>,
  what: string,
): Promise<void> {
  let ended = false;
  void exited.then(
    () => {
      ended = true;
    },
    () => {
      ended = true;
    },
  );
  while (!done()) {
    if (ended) throw new Error(`the CLI exited before ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `0.500` → `0.5`: decimal strings compared by value. */
export function plainDecimal(decimal: string): string {
  return decimal.includes(".") ? decimal.replace(/0+$/, "").replace(/\.$/, "") : decimal;
}

/** Parses a CLI's stdout as JSON, saying what it printed when it is not. */
export function parseStdout<T>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}
