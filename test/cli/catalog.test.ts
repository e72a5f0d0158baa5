import { existsSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import {
  CLI_TEST_OPTIONS,
  catalogProject,
  createProjectFixture,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { BACKENDS, type Backend, createTestDatabase } from "../helpers/test-store.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly) and then read the declared graph back with plain SQL, as a user does.

interface CatalogFixture {
  readonly project: ProjectFixture;
  cli(args: ReadonlyArray<string>): Promise<CliResult>;
  /** Opens the project's database in this process (the CLI must have exited). */
  open(): Promise<Store>;
  dispose(): Promise<void>;
}

async function createCatalogFixture(backend: Backend): Promise<CatalogFixture> {
  if (backend === "pglite") {
    const project = await createProjectFixture(catalogProject(), { migratedDatabase: true });
    return {
      project,
      cli: (args) => project.cli(args),
      open: () => openEmbeddedStore(embeddedDataDir(project.dir)),
      dispose: project.remove,
    };
  }
  const project = await createProjectFixture(catalogProject());
  const database = await createTestDatabase();
  return {
    project,
    cli: (args) => project.cli(["--database-url", database.url, ...args]),
    open: () => openPostgresStore(database.url),
    dispose: async () => {
      await database.drop();
      await project.remove();
    },
  };
}

interface CatalogRows {
  assets: Array<Record<string, unknown>>;
  deps: string[];
}

/** `strata.assets` and `strata.asset_deps` as plain SQL sees them. */
async function readCatalog(fixture: CatalogFixture): Promise<CatalogRows> {
  const store = await fixture.open();
  try {
    const assets = await sql<Record<string, unknown>>`
      select asset_key, group_name, description, code_version, tags, owners, kinds, partitions
      from strata.assets order by asset_key`.execute(store.db);
    const deps = await sql<{ asset_key: string; dep_key: string }>`
      select asset_key, dep_key from strata.asset_deps order by asset_key, dep_key`.execute(
      store.db,
    );
    return {
      assets: assets.rows,
      deps: deps.rows.map((r) => `${r.asset_key} <- ${r.dep_key}`),
    };
  } finally {
    await store.close();
  }
}

function ok(result: CliResult): void {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
}

const plain = (asset_key: string, group_name: string) => ({
  asset_key,
  group_name,
  description: null,
  code_version: null,
  tags: {},
  owners: [],
  kinds: [],
  partitions: null,
});

/** Runs `body` with a fixture of its own, disposed of afterwards. */
async function withCatalogFixture(
  backend: Backend,
  body: (fixture: CatalogFixture) => Promise<void>,
): Promise<void> {
  const fixture = await createCatalogFixture(backend);
  try {
    await body(fixture);
  } finally {
    await fixture.dispose();
  }
}

describe.concurrent.each(BACKENDS)("the declared catalog on %s", CLI_TEST_OPTIONS, (backend) => {
  it("holds the declared graph after strata list and follows edits of the project", () =>
    withCatalogFixture(backend, async (fixture) => {
      ok(await fixture.cli(["list"]));
      expect(await readCatalog(fixture)).toEqual({
        assets: [
          {
            ...plain("analyses", "llm"),
            tags: { pii: "" },
            owners: ["user:ada@example.com"],
            kinds: ["openai"],
          },
          {
            asset_key: "raw/documents",
            group_name: "ingest",
            description: "Source documents",
            code_version: "1",
            tags: { team: "nlp" },
            owners: ["team:nlp"],
            kinds: ["arrow"],
            partitions: null,
          },
          {
            ...plain("raw/images", "ingest"),
            tags: { team: "vision", pii: "" },
            owners: ["team:vision"],
          },
          plain("report", "reporting"),
          plain("summaries", "llm"),
        ],
        deps: [
          "analyses <- raw/documents",
          "report <- raw/images",
          "report <- summaries",
          "summaries <- analyses",
        ],
      });

      // remove raw/images, point report at analyses, partition raw/documents, bump a code version
      await fixture.project.write({
        "strata.config.ts": `import { asset, defineProject, staticPartitions } from "strata";

const rows = async () => [{ id: "1" }];
export const documents = asset({
  key: "raw/documents",
  group: "ingest",
  codeVersion: "2",
  partitions: staticPartitions(["en", "de"]),
  compute: rows,
});
export const analyses = asset({ key: "analyses", group: "llm", deps: { documents }, compute: rows });
export const report = asset({ key: "report", group: "reporting", deps: { analyses }, compute: rows });
export default defineProject({ assets: [documents, analyses, report] });
`,
      });
      ok(await fixture.cli(["list", "--json"]));
      expect(await readCatalog(fixture)).toEqual({
        assets: [
          plain("analyses", "llm"),
          { ...plain("raw/documents", "ingest"), code_version: "2", partitions: "static [en, de]" },
          plain("report", "reporting"),
        ],
        deps: ["analyses <- raw/documents", "report <- analyses"],
      });
      // with --database-url, no embedded database is created beside the project
      expect(existsSync(join(fixture.project.dir, ".strata"))).toBe(backend === "pglite");
    }));

  it("is kept as it was when the project turns invalid", () =>
    withCatalogFixture(backend, async (fixture) => {
      ok(await fixture.cli(["list", "--json"]));
      const before = await readCatalog(fixture);
      expect(before.assets.map((a) => a.asset_key)).toEqual([
        "analyses",
        "raw/documents",
        "raw/images",
        "report",
        "summaries",
      ]);

      // a cycle: the project is refused before the catalog is touched
      await fixture.project.write({
        "strata.config.ts": `import { asset, defineProject } from "strata";

const rows = async () => [{ id: "1" }];
export const a = asset({ key: "a", deps: { b: "b" }, compute: rows });
export const b = asset({ key: "b", deps: { a }, compute: rows });
export default defineProject({ assets: [a, b] });
`,
      });
      const refused = await fixture.cli(["list"]);
      expect(refused.stderr).toContain("a → b → a");
      expect(refused.code).toBe(2);
      expect(await readCatalog(fixture)).toEqual(before);
    }));
});
