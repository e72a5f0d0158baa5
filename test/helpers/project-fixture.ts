import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import {
  cp,
  mkdir,
  mkdtemp,
  readFile,
  realpath,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { migrate, readMigrations } from "../../src/store/migrator.js";
import { embeddedDataDir, openEmbeddedStore } from "../../src/store/store.js";
import { type CliResult, runCliInProcess, runCliProcess } from "./run-cli.js";

/** The repository root: what `<project>/node_modules/strata` links to. */
export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The project file the CLI reads when neither `--project` nor `STRATA_PROJECT` names one. */
export const DEFAULT_PROJECT_FILE = "strata.config.ts";

/** Options of {@link createProjectFixture}. */
export interface ProjectFixtureOptions {
  /**
   * Start with a migrated, empty embedded database in `<dir>/.strata/db`, copied from a template
   * made once (see {@link migratedDatabaseTemplate}). Creating a PGlite data directory costs seconds of CPU; tests
   * that are not about creating the database use this to stay fast.
   */
  readonly migratedDatabase?: boolean;
}

/** A user's project directory for one test. */
export interface ProjectFixture {
  /** The directory, with symlinks resolved (the CLI prints resolved paths). */
  readonly dir: string;
  /** The absolute path of `strata.config.ts` in `dir`. */
  readonly file: string;
  /** Writes (or overwrites) files relative to `dir`. */
  write(files: Readonly<Record<string, string>>): Promise<void>;
  /** Runs the compiled `strata` CLI in `dir`, inside this process (see `runCliInProcess`). */
  cli(args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  /**
   * Runs the real `strata` binary in `dir`, in a child process: for tests about the process
   * itself (exit statuses, signals, pipes, start-up).
   */
  cliProcess(args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv): Promise<CliResult>;
  remove(): Promise<void>;
}

/**
 * Makes a temporary project directory holding `files` (a string is the content of
 * `strata.config.ts`), with `node_modules/strata` linked to this repository, so that project
 * files `import { asset, defineProject } from "strata"` as a user's do (the package's `exports`
 * resolve to the compiled `dist/index.js`: run `npm run build` first).
 *
 * @example
 * const project = await createProjectFixture(diamondProject());
 * try { const result = await project.cli(["list", "--json"]); } finally { await project.remove(); }
 */
export async function createProjectFixture(
  files: string | Readonly<Record<string, string>>,
  options: ProjectFixtureOptions = {},
): Promise<ProjectFixture> {
  const dir = await realpath(await mkdtemp(join(tmpdir(), "strata-project-")));
  await mkdir(join(dir, "node_modules"));
  await symlink(REPO_ROOT, join(dir, "node_modules", "strata"), "dir");
  const write = async (more: Readonly<Record<string, string>>) => {
    for (const [name, content] of Object.entries(more)) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), content);
    }
  };
  await write(typeof files === "string" ? { [DEFAULT_PROJECT_FILE]: files } : files);
  if (options.migratedDatabase === true) {
    await cp(await migratedDatabaseTemplate(), embeddedDataDir(dir), { recursive: true });
  }
  return {
    dir,
    file: join(dir, DEFAULT_PROJECT_FILE),
    write,
    cli: (args, env) => runCliInProcess(args, { cwd: dir, env }),
    cliProcess: (args, env) => runCliProcess(args, { cwd: dir, env }),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

let template: Promise<string> | undefined;

/**
 * A migrated, empty embedded data directory, shared by the test processes of a run (and by later
 * runs) through the temp dir: its name holds a hash of the migrations and the PGlite version,
 * so a changed migration gets a new template. Tests only ever copy it, never open it.
 */
function migratedDatabaseTemplate(): Promise<string> {
  template ??= (async () => {
    const migrations = await readMigrations();
    const pglite = (
      JSON.parse(
        await readFile(
          join(REPO_ROOT, "node_modules", "@electric-sql", "pglite", "package.json"),
          "utf8",
        ),
      ) as { version: string }
    ).version;
    const hash = createHash("sha256")
      .update(pglite)
      .update(migrations.map((m) => `${m.name}:${m.checksum}`).join("\n"))
      .digest("hex")
      .slice(0, 16);
    const dataDir = join(tmpdir(), `strata-test-db-template-${hash}`);
    if (existsSync(join(dataDir, "PG_VERSION"))) return dataDir;
    // Built aside and renamed into place, so a concurrent process never copies half of one.
    const building = await mkdtemp(join(tmpdir(), "strata-test-db-building-"));
    const store = await openEmbeddedStore(join(building, "db"));
    try {
      await migrate(store.db);
    } finally {
      await store.close();
    }
    try {
      await rename(join(building, "db"), dataDir);
    } catch (error) {
      // another process got there first: use its template
      if (!existsSync(join(dataDir, "PG_VERSION"))) throw error;
    }
    await rm(building, { recursive: true, force: true });
    return dataDir;
  })();
  return template;
}

/** Options of the project templates. */
export interface ProjectTemplateOptions {
  /** `defineProject({ name })`; without it the project is named after its directory. */
  readonly name?: string;
}

function nameField(options: ProjectTemplateOptions): string {
  return options.name === undefined ? "" : `\n  name: ${JSON.stringify(options.name)},`;
}

/**
 * The example project of DESIGN.md: `raw/documents` (statically partitioned, with metadata) and
 * `analyses`, which calls a model through `ctx.infer`, with an endpoint and a priced model.
 */
export function designExampleProject(options: ProjectTemplateOptions = {}): string {
  return `import { asset, defineProject, staticPartitions } from "strata";

export const documents = asset({
  key: "raw/documents",
  group: "ingest",
  description: "Source documents",
  tags: { team: "nlp" },
  owners: ["team:nlp"],
  kinds: ["arrow"],
  codeVersion: "1",
  partitions: staticPartitions(["en", "de"]),
  compute: async (_ctx) => [{ id: "d1", text: "..." }],
});

export const analyses = asset({
  key: "analyses",
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "small",
      fallback: ["large"],
      id: (doc) => doc.id,
      messages: (doc) => [{ role: "user", content: \`Analyze: \${doc.text}\` }],
      params: { max_tokens: 256, temperature: 0 },
      maxFailures: 0,
    }),
});

export default defineProject({${nameField(options)}
  assets: [documents, analyses],
  endpoints: {
    local: { baseURL: "http://127.0.0.1:8000/v1", apiKeyEnv: "OPENAI_API_KEY", maxConcurrency: 64 },
  },
  models: {
    small: {
      endpoint: "local",
      name: "qwen3-8b",
      price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
    },
  },
});
`;
}

/** A diamond: `raw/documents` → `analyses`, `summaries` → `report`. */
export function diamondProject(options: ProjectTemplateOptions = {}): string {
  return `import { asset, defineProject } from "strata";

const rows = async () => [{ id: "1" }];
export const documents = asset({ key: "raw/documents", compute: rows });
export const analyses = asset({ key: "analyses", deps: { documents }, compute: rows });
export const summaries = asset({ key: "summaries", deps: { documents }, compute: rows });
export const report = asset({ key: "report", deps: { analyses, summaries }, compute: rows });

export default defineProject({${nameField(options)}
  assets: [documents, analyses, summaries, report],
});
`;
}

/**
 * Five assets in three groups with tags, owners and kinds:
 * `raw/documents` and `raw/images` (group `ingest`) → `analyses` → `summaries` (group `llm`),
 * and `summaries` with `raw/images` → `report` (group `reporting`).
 */
export function catalogProject(options: ProjectTemplateOptions = {}): string {
  return `import { asset, defineProject } from "strata";

const rows = async () => [{ id: "1" }];
export const documents = asset({
  key: "raw/documents",
  group: "ingest",
  description: "Source documents",
  tags: { team: "nlp" },
  owners: ["team:nlp"],
  kinds: ["arrow"],
  codeVersion: "1",
  compute: rows,
});
export const images = asset({
  key: "raw/images",
  group: "ingest",
  tags: { team: "vision", pii: "" },
  owners: ["team:vision"],
  compute: rows,
});
export const analyses = asset({
  key: "analyses",
  group: "llm",
  tags: { pii: "" },
  owners: ["user:ada@example.com"],
  kinds: ["openai"],
  deps: { documents },
  compute: rows,
});
export const summaries = asset({ key: "summaries", group: "llm", deps: { analyses }, compute: rows });
export const report = asset({
  key: "report",
  group: "reporting",
  deps: { summaries, images: "raw/images" },
  compute: rows,
});

export default defineProject({${nameField(options)}
  assets: [documents, images, analyses, summaries, report],
});
`;
}

/**
 * Partitioned assets: `raw/documents` and `analyses` share static partitions `[en, de]`,
 * `events` is daily from 2026-01-01, and `report` (unpartitioned) reads all of them.
 */
export function partitionedProject(options: ProjectTemplateOptions = {}): string {
  return `import { asset, dailyPartitions, defineProject, staticPartitions } from "strata";

const rows = async () => [{ id: "1" }];
const languages = staticPartitions(["en", "de"]);
export const documents = asset({ key: "raw/documents", partitions: languages, compute: rows });
export const analyses = asset({
  key: "analyses",
  partitions: staticPartitions(["en", "de"]),
  deps: { documents },
  compute: rows,
});
export const events = asset({
  key: "events",
  partitions: dailyPartitions({ start: "2026-01-01" }),
  compute: rows,
});
export const report = asset({ key: "report", deps: { analyses, events }, compute: rows });

export default defineProject({${nameField(options)}
  assets: [documents, analyses, events, report],
});
`;
}

/**
 * vitest options of CLI test suites: each test runs whole CLI commands (a second or two of CPU
 * each when they open a database), so a loaded machine needs more than the default timeout.
 */
export const CLI_TEST_OPTIONS = { timeout: 120_000 } as const;
