import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readMigrations } from "../../src/store/migrator.js";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { type DatabaseSnapshot, snapshotDatabase } from "../helpers/db-snapshot.js";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  diamondProject,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { BACKENDS, type Backend, createTestDatabase } from "../helpers/test-store.js";

// A schema changed by hand after migration: every command refuses it in one line naming the
// change and exits 2 changing nothing; `strata db migrate` recreates what the migrations made.

interface Workspace {
  readonly project: ProjectFixture;
  cli(args: ReadonlyArray<string>): Promise<CliResult>;
  /** Runs `body` with the database open in this process (no CLI may run meanwhile). */
  withStore<T>(body: (store: Store) => Promise<T>): Promise<T>;
  dispose(): Promise<void>;
}

async function createWorkspace(backend: Backend): Promise<Workspace> {
  const project = await createProjectFixture(diamondProject(), {
    migratedDatabase: backend === "pglite",
  });
  if (backend === "pglite") {
    return {
      project,
      cli: (args) => project.cli(args),
      withStore: async (body) => {
        const store = await openEmbeddedStore(embeddedDataDir(project.dir));
        try {
          return await body(store);
        } finally {
          await store.close();
        }
      },
      dispose: project.remove,
    };
  }
  const database = await createTestDatabase();
  return {
    project,
    cli: (args) => project.cli(["--database-url", database.url, ...args]),
    withStore: async (body) => {
      const store = await openPostgresStore(database.url);
      try {
        return await body(store);
      } finally {
        await store.close();
      }
    },
    dispose: async () => {
      await database.drop();
      await project.remove();
    },
  };
}

const stderrLines = (result: CliResult) =>
  result.stderr.split("\n").filter((line) => line.trim() !== "");

/** Commands that open the store, each with the arguments it needs. */
const COMMANDS: ReadonlyArray<ReadonlyArray<string>> = [
  ["list"],
  ["materialize", "--select", "*"],
  ["runs"],
  ["costs"],
  ["runs", "prune", "--older-than", "30d"],
];

/** Each change made by hand, what every command says about it, and what `db migrate` says. */
const CHANGES: ReadonlyArray<{
  readonly name: string;
  readonly ddl: string;
  readonly says: string;
  readonly recreated: string;
}> = [
  {
    name: "a dropped table",
    ddl: "drop table strata.asset_deps",
    says: "table strata.asset_deps is missing",
    recreated: "table strata.asset_deps (empty)",
  },
  {
    name: "a dropped column",
    ddl: "alter table strata.materializations drop column dep_keys",
    says: "column strata.materializations.dep_keys is missing",
    recreated: "column strata.materializations.dep_keys",
  },
  {
    name: "a dropped view",
    ddl: "drop view strata.cost_by_model",
    says: "view strata.cost_by_model is missing",
    recreated: "view strata.cost_by_model",
  },
  {
    name: "a dropped index",
    ddl: "drop index strata.inference_calls_cache_idx",
    says: "index strata.inference_calls_cache_idx is missing",
    recreated: "index strata.inference_calls_cache_idx",
  },
  {
    name: "a dropped record of migrations",
    ddl: "drop table strata.migrations",
    says: "table strata.migrations, the record of applied migrations, is missing",
    recreated: `recorded ${(await readMigrations()).map((m) => m.name).join(", ")} as applied again`,
  },
];

describe.each(BACKENDS)("a schema changed after migration, on %s", CLI_TEST_OPTIONS, (backend) => {
  let ws: Workspace;
  let runId: string;
  beforeEach(async () => {
    ws = await createWorkspace(backend);
    const seeded = await ws.cli(["materialize", "--select", "*", "--json"]);
    expect(seeded.code, seeded.stderr).toBe(0);
    runId = (JSON.parse(seeded.stdout) as { runId: string }).runId;
  });
  afterEach(() => ws.dispose());

  const snapshot = () => ws.withStore((s) => snapshotDatabase(s.db, ws.project.dir));

  /** Runs `args`, expecting exit code 2 and one line on stderr; returns that line. */
  async function refused(args: ReadonlyArray<string>): Promise<string> {
    const result = await ws.cli(args);
    expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
    const lines = stderrLines(result);
    expect(lines, args.join(" ")).toHaveLength(1);
    expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /);
    return lines[0]!;
  }

  it("is refused by every command in one line naming the change, changing nothing", async () => {
    await ws.withStore((store) => sql`drop table strata.asset_deps`.execute(store.db));
    const before: DatabaseSnapshot = await snapshot();
    for (const args of COMMANDS) {
      expect(await refused(args)).toBe(
        'strata: schema strata was changed after it was migrated: table strata.asset_deps is missing; run "strata db migrate" to recreate what is missing from the migrations',
      );
    }
    expect(await snapshot()).toEqual(before);
  });

  it.each(CHANGES)("is repaired by db migrate: $name", async (change) => {
    await ws.withStore((store) => sql.raw(change.ddl).execute(store.db));
    const before = await snapshot();
    for (const args of [["list"], ["db", "status"]]) {
      const line = await refused(args);
      expect(line).toMatch(/^strata: schema strata was changed after it was migrated: /);
      expect(line).toContain(change.says);
      expect(line).toContain('run "strata db migrate"');
    }
    expect(await snapshot()).toEqual(before);

    const migrated = await ws.cli(["db", "migrate"]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stdout).toContain(change.recreated);
    const status = await ws.cli(["db", "status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ problems: [] });
    // what was not dropped is still there
    const runs = await ws.cli(["runs", "--json"]);
    expect(runs.code, runs.stderr).toBe(0);
    expect((JSON.parse(runs.stdout) as Array<{ id: string }>).map((r) => r.id)).toContain(runId);
  });

  it("names a column whose type was changed, which db migrate cannot undo", async () => {
    await ws.withStore((store) =>
      sql`alter table strata.runs alter column pid type text`.execute(store.db),
    );
    const says = "column strata.runs.pid has type text, not integer";
    for (const args of [["list"], ["db", "status"]]) {
      expect(await refused(args)).toBe(
        `strata: schema strata was changed after it was migrated: ${says}; strata cannot undo this: change it back by hand or restore a backup`,
      );
    }
    expect(await refused(["db", "migrate"])).toBe(
      `strata: schema strata cannot be repaired from the migrations: ${says}; change it back by hand or restore a backup`,
    );
  });
});
