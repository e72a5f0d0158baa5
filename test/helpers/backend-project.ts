import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { createProjectFixture, type ProjectFixture } from "./project-fixture.js";
import type { CliResult } from "./run-cli.js";
import { type Backend, createTestDatabase } from "./test-store.js";

/** A project directory whose CLI runs against one backend: its embedded database, or Postgres. */
export interface BackendProject {
  readonly backend: Backend;
  readonly project: ProjectFixture;
  /** Runs the compiled CLI in the project, with `--database-url` on Postgres. */
  cli(args: ReadonlyArray<string>): Promise<CliResult>;
  /** Opens the project's database in this process (the CLI must have exited: PGlite is locked). */
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

/**
 * Makes a project for one test on `backend`: on `pglite` the embedded database in
 * `<dir>/.strata/db` (migrated from the template), on `postgres` a fresh database on the
 * TEST_DATABASE_URL server that the CLI migrates on first use.
 *
 * @example
 * await withBackendProject("pglite", source, async (p) => { await p.cli(["list"]); });
 */
export async function createBackendProject(
  backend: Backend,
  files: string | Readonly<Record<string, string>>,
): Promise<BackendProject> {
  if (backend === "pglite") {
    const project = await createProjectFixture(files, { migratedDatabase: true });
    return {
      backend,
      project,
      cli: (args) => project.cli(args),
      open: () => openEmbeddedStore(embeddedDataDir(project.dir)),
      dispose: project.remove,
    };
  }
  const project = await createProjectFixture(files);
  const database = await createTestDatabase();
  return {
    backend,
    project,
    cli: (args) => project.cli(["--database-url", database.url, ...args]),
    open: () => openPostgresStore(database.url),
    dispose: async () => {
      await database.drop();
      await project.remove();
    },
  };
}

/** Runs `body` with a {@link BackendProject} of its own, disposed of afterwards. */
export async function withBackendProject(
  backend: Backend,
  files: string | Readonly<Record<string, string>>,
  body: (project: BackendProject) => Promise<void>,
): Promise<void> {
  const project = await createBackendProject(backend, files);
  try {
    await body(project);
  } finally {
    await project.dispose();
  }
}

/** Opens the project's database, runs `body` and closes it again (releasing PGlite's lock). */
export async function withStore<T>(
  project: BackendProject,
  body: (store: Store) => Promise<T>,
): Promise<T> {
  const store = await project.open();
  try {
    return await body(store);
  } finally {
    await store.close();
  }
}
