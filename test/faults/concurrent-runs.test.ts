import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openPostgresStore, type Store } from "../../src/store/store.js";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import { runCliProcess, startCliProcess } from "../helpers/run-cli.js";
import { createTestDatabase } from "../helpers/test-store.js";

// Two `strata materialize` processes on one Postgres: a partition being built by one run is
// refused to another (an advisory lock per asset partition), other partitions build in parallel.
// Postgres only: the embedded database has a single writer by construction.

/** How long a build takes once released. */
const SLEEP_MS = 1_000;

// A build holds until the test creates the file "release" in the project directory (the CLI's
// working directory), so that a loaded machine cannot finish it before the test looks.
const PROJECT = `import { existsSync } from "node:fs";
import { asset, defineProject, staticPartitions } from "strata";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const slow = asset({
  key: "slow",
  partitions: staticPartitions(["a", "b"]),
  compute: async (ctx) => {
    for (let waited = 0; !existsSync("release") && waited < 60_000; waited += 50) await sleep(50);
    await sleep(${SLEEP_MS});
    return [{ partition: ctx.partitionKey, at: Date.now() }];
  },
});

export default defineProject({ assets: [slow] });
`;

interface RunJson {
  readonly id: string;
  readonly status: string;
}

interface MaterializationRow {
  readonly run_id: string;
  readonly partition_key: string;
  readonly status: string;
  readonly started_at: Date;
  readonly finished_at: Date | null;
}

describe.skipIf(process.env.TEST_DATABASE_URL === undefined)(
  "concurrent materialize processes on one Postgres",
  () => {
    let project: ProjectFixture;
    let database: { url: string; drop(): Promise<void> };
    let store: Store;
    const cli = (args: ReadonlyArray<string>) =>
      runCliProcess(["--database-url", database.url, ...args], { cwd: project.dir });
    const start = (args: ReadonlyArray<string>) =>
      startCliProcess(["--database-url", database.url, ...args], { cwd: project.dir });

    beforeAll(async () => {
      project = await createProjectFixture(PROJECT);
      database = await createTestDatabase();
      const migrated = await cli(["db", "migrate"]);
      expect(migrated.code, migrated.stderr).toBe(0);
      store = await openPostgresStore(database.url);
    });

    afterAll(async () => {
      await store?.close();
      await database?.drop();
      await project?.remove();
    });

    /** Polls `strata runs --json` until `count` runs are `running`; returns them, oldest first. */
    async function waitForRunningRuns(count: number): Promise<RunJson[]> {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const listed = await cli(["runs", "--json"]);
        const running = (JSON.parse(listed.stdout || "[]") as RunJson[])
          .filter((r) => r.status === "running")
          .reverse();
        if (running.length >= count) return running;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error("no run started within 60 s");
    }

    it(
      "refuses a partition another run is building, naming both, and builds another partition in parallel",
      async () => {
        const first = start(["materialize", "--select", "slow", "--partition", "a", "--json"]);
        const [running] = await waitForRunningRuns(1);
        const third = start(["materialize", "--select", "slow", "--partition", "b", "--json"]);
        // both partitions are being built at once
        await waitForRunningRuns(2);
        const runsBefore = await countRuns();

        const second = await cli(["materialize", "--select", "slow", "--partition", "a"]);
        // it refuses at once, while the first run still holds the partition
        expect(first.child.exitCode).toBeNull();
        await project.write({ release: "" });
        expect(second.code, second.stderr).not.toBe(0);
        expect(second.stderr.trim().split("\n")).toHaveLength(1);
        expect(second.stderr).toContain('partition "a" of asset "slow" is being materialized by');
        expect(second.stderr).toContain(`run ${running!.id}`);
        expect(second.stdout).toBe("");

        const [a, b] = await Promise.all([first.result, third.result]);
        expect(a.code, a.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        const runA = JSON.parse(a.stdout) as { runId: string; status: string };
        const runB = JSON.parse(b.stdout) as { runId: string; status: string };
        expect(runA.runId).toBe(running!.id);
        expect([runA.status, runB.status]).toEqual(["succeeded", "succeeded"]);

        // the refused process recorded no run
        expect(await countRuns()).toBe(runsBefore);
        const { rows } = await sql<MaterializationRow>`
          select run_id, partition_key, status, started_at, finished_at
          from strata.materializations where asset_key = 'slow'
          order by started_at`.execute(store.db);
        expect(rows.map((r) => [r.run_id, r.partition_key, r.status])).toEqual(
          expect.arrayContaining([
            [runA.runId, "a", "succeeded"],
            [runB.runId, "b", "succeeded"],
          ]),
        );
        expect(rows).toHaveLength(2);
        // b was built while a was being built
        const rowA = rows.find((r) => r.partition_key === "a")!;
        const rowB = rows.find((r) => r.partition_key === "b")!;
        expect(rowB.started_at.getTime()).toBeLessThan(rowA.finished_at!.getTime());
        expect(rowA.started_at.getTime()).toBeLessThan(rowB.finished_at!.getTime());
      },
      CLI_TEST_OPTIONS.timeout,
    );

    it(
      "never builds one asset partition twice at once when several processes race for it",
      async () => {
        const racers = Array.from({ length: 3 }, () =>
          start(["materialize", "--select", "slow", "--partition", "b", "--json"]),
        );
        const results = await Promise.all(racers.map((r) => r.result));
        const winners = results.filter((r) => r.code === 0);
        expect(winners.length, results.map((r) => r.stderr).join("\n")).toBeGreaterThanOrEqual(1);
        for (const loser of results.filter((r) => r.code !== 0)) {
          expect(loser.stderr).toContain('partition "b" of asset "slow" is being materialized');
        }
        const { rows } = await sql<MaterializationRow>`
          select run_id, partition_key, status, started_at, finished_at
          from strata.materializations where asset_key = 'slow'
          order by partition_key, started_at`.execute(store.db);
        // exactly one succeeded materialization per partition per successful run
        const perRun = new Map<string, number>();
        for (const r of rows.filter((r) => r.status === "succeeded")) {
          const key = `${r.run_id} ${r.partition_key}`;
          perRun.set(key, (perRun.get(key) ?? 0) + 1);
        }
        expect([...perRun.values()].every((n) => n === 1)).toBe(true);
        for (const winner of winners) {
          const id = (JSON.parse(winner.stdout) as { runId: string }).runId;
          expect(perRun.get(`${id} b`)).toBe(1);
        }
        // no two materializations of one partition overlap in time
        for (const partition of ["a", "b"]) {
          const spans = rows
            .filter((r) => r.partition_key === partition && r.finished_at !== null)
            .map((r) => [r.started_at.getTime(), r.finished_at!.getTime()] as const);
          for (let i = 1; i < spans.length; i++) {
            expect(spans[i]![0], `partition ${partition}`).toBeGreaterThanOrEqual(spans[i - 1]![1]);
          }
        }
      },
      CLI_TEST_OPTIONS.timeout,
    );

    async function countRuns(): Promise<number> {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from strata.runs`.execute(store.db);
      return rows[0]!.n;
    }
  },
);
