import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { embeddedDataDir, openEmbeddedStore } from "../../src/store/store.js";
import {
  CLI_TEST_OPTIONS,
  catalogProject,
  createProjectFixture,
  partitionedProject,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";

// These tests run the compiled CLI (`npm test` builds it first; run `npm run build` before
// running vitest directly), each in its own project directory with its own embedded database.

interface ListedAsset {
  key: string;
  group: string;
  deps: string[];
  status: string;
  lastMaterializedAt: string | null;
}

function listed(result: CliResult): ListedAsset[] {
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as ListedAsset[];
}

const keysOf = (rows: ReadonlyArray<ListedAsset>) => rows.map((r) => r.key);

describe.concurrent("strata list", CLI_TEST_OPTIONS, () => {
  it("lists every asset of a fresh project as missing, never materialized", async () => {
    // no database yet: this test also covers creating the embedded database on first use
    const project = await createProjectFixture(partitionedProject());
    try {
      const rows = listed(await project.cli(["list", "--json"]));
      expect(
        rows.map(({ key, group, deps, status, lastMaterializedAt }) => ({
          key,
          group,
          deps,
          status,
          lastMaterializedAt,
        })),
      ).toEqual([
        {
          key: "analyses",
          group: "default",
          deps: ["raw/documents"],
          status: "missing",
          lastMaterializedAt: null,
        },
        { key: "events", group: "default", deps: [], status: "missing", lastMaterializedAt: null },
        {
          key: "raw/documents",
          group: "default",
          deps: [],
          status: "missing",
          lastMaterializedAt: null,
        },
        {
          key: "report",
          group: "default",
          deps: ["analyses", "events"],
          status: "missing",
          lastMaterializedAt: null,
        },
      ]);

      const table = await project.cli(["list"]);
      expect(table.code).toBe(0);
      for (const key of ["analyses", "events", "raw/documents", "report"]) {
        expect(table.stdout).toContain(key);
      }
      expect(table.stdout).toContain("missing");
    } finally {
      await project.remove();
    }
  });

  it.each([
    { selection: "group:llm", keys: ["analyses", "summaries"] },
    // tag:K matches the tag K with an empty value only, as in Dagster
    { selection: "tag:pii", keys: ["analyses", "raw/images"] },
    // a bare key is a key: selection; KEY+ adds everything downstream
    { selection: "raw/images+ or kind:arrow", keys: ["raw/documents", "raw/images", "report"] },
    { selection: "2+summaries and tag:team=nlp", keys: ["raw/documents"] },
  ])("lists only the assets --select $selection selects", async ({ selection, keys }) => {
    const project = await createProjectFixture(catalogProject(), { migratedDatabase: true });
    try {
      const rows = listed(await project.cli(["list", "--json", "--select", selection]));
      expect(keysOf(rows)).toEqual(keys);
      // deps are the declared deps, also those outside the selection
      if (keys.includes("report")) {
        expect(rows.find((r) => r.key === "report")?.deps.sort()).toEqual([
          "raw/images",
          "summaries",
        ]);
      }
    } finally {
      await project.remove();
    }
  });

  it("prints [] and exits 0 for a selection that matches nothing", async () => {
    const project = await createProjectFixture(catalogProject(), { migratedDatabase: true });
    try {
      const result = await project.cli(["list", "--json", "--select", "key:nope or group:none"]);
      expect(listed(result)).toEqual([]);
      expect(result.stdout.trim()).toBe("[]");
    } finally {
      await project.remove();
    }
  });

  it("exits 2 on a selection with a syntax error, naming the column and the selection", async () => {
    const project = await createProjectFixture(catalogProject(), { migratedDatabase: true });
    try {
      const result = await project.cli(["list", "--json", "--select", "key:a and"]);
      expect(result.stdout).toBe("");
      const lines = result.stderr.split("\n").filter((l) => l !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('unexpected "and" at column 7 in "key:a and"');
      expect(result.code).toBe(2);
    } finally {
      await project.remove();
    }
  });

  it("exits 2 on a selection that looks like SQL and leaves the database intact", async () => {
    const project = await createProjectFixture(catalogProject(), { migratedDatabase: true });
    const injection = "'; drop schema strata cascade; --";
    try {
      const result = await project.cli(["list", "--json", "--select", injection]);
      expect(result.stdout).toBe("");
      const lines = result.stderr.split("\n").filter((l) => l !== "");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`column 1 in "${injection}"`);
      expect(result.code).toBe(2);

      // the CLI has exited, so its lock on the embedded database is free
      const store = await openEmbeddedStore(embeddedDataDir(project.dir));
      try {
        const tables = await sql<{ table_name: string }>`
          select table_name from information_schema.tables
          where table_schema = 'strata' order by table_name`.execute(store.db);
        expect(tables.rows.map((r) => r.table_name)).toEqual(
          expect.arrayContaining(["asset_deps", "assets", "materializations", "runs"]),
        );
        const assets = await sql<{ asset_key: string }>`
          select asset_key from strata.assets order by asset_key`.execute(store.db);
        expect(assets.rows.map((r) => r.asset_key)).toEqual([
          "analyses",
          "raw/documents",
          "raw/images",
          "report",
          "summaries",
        ]);
      } finally {
        await store.close();
      }
    } finally {
      await project.remove();
    }
  });
});
