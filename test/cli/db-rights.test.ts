import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readMigrations } from "../../src/store/migrator.js";
import { openPostgresStore } from "../../src/store/store.js";
import { type DatabaseSnapshot, snapshotDatabase } from "../helpers/db-snapshot.js";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  diamondProject,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";

// A Postgres role without the rights strata's schema needs: each command says which right is
// missing and the grant that gives it, in one line, exits 2 and changes nothing.

const BASE = process.env.TEST_DATABASE_URL;

const stderrLines = (result: CliResult) =>
  result.stderr.split("\n").filter((line) => line.trim() !== "");

async function admin(url: string, ...statements: ReadonlyArray<string>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

describe.skipIf(BASE === undefined)(
  "a database role without the rights strata needs",
  CLI_TEST_OPTIONS,
  () => {
    const suffix = `${process.pid}_${randomBytes(4).toString("hex")}`;
    const database = `strata_rights_${suffix}`;
    const role = `strata_weak_${suffix}`;
    const password = `pw-${randomBytes(6).toString("hex")}`;
    let adminUrl: string;
    let weakUrl: string;
    let project: ProjectFixture;

    const as = (url: string, args: ReadonlyArray<string>) =>
      project.cli(["--database-url", url, ...args]);
    const snapshot = async (): Promise<DatabaseSnapshot> => {
      const store = await openPostgresStore(adminUrl);
      try {
        return await snapshotDatabase(store.db, project.dir);
      } finally {
        await store.close();
      }
    };
    /** Runs `args` as the weak role: exit 2 and one line; returns the line. */
    async function refused(args: ReadonlyArray<string>): Promise<string> {
      const result = await as(weakUrl, args);
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
      const lines = stderrLines(result);
      expect(lines, args.join(" ")).toHaveLength(1);
      expect(result.stderr).not.toMatch(/unexpected error|\n\s+at /);
      expect(result.stderr).not.toContain(password);
      return lines[0]!;
    }

    beforeAll(async () => {
      const base = BASE as string;
      await admin(
        base,
        `create database ${database}`,
        `create role ${role} login password '${password}'`,
        `revoke all on database ${database} from public`,
        `grant connect on database ${database} to ${role}`,
      );
      const url = new URL(base);
      url.pathname = `/${database}`;
      adminUrl = url.toString();
      await admin(adminUrl, "revoke create on schema public from public");
      url.username = role;
      url.password = password;
      weakUrl = url.toString();
      project = await createProjectFixture(diamondProject());
    });

    afterAll(async () => {
      await project?.remove();
      const base = BASE as string;
      await admin(
        base,
        `drop database if exists ${database} with (force)`,
        `drop role if exists ${role}`,
      );
    });

    it("names CREATE on the database when it cannot create the schema", async () => {
      const says = `strata: the database role "${role}" lacks CREATE on database "${database}", which applying ${(await readMigrations()).map((m) => m.name).join(", ")} needs; run "strata db migrate" once as a role that has it (the database owner), or grant it: grant create on database ${database} to ${role}`;
      expect(await refused(["db", "migrate"])).toBe(says);
      expect(await refused(["list"])).toBe(says);
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      const schema = await client.query("select 1 from pg_namespace where nspname = 'strata'");
      await client.end();
      expect(schema.rowCount).toBe(0);
    });

    it("names USAGE on the schema and SELECT on its tables, then the writes it lacks", async () => {
      const migrated = await as(adminUrl, ["materialize", "--select", "*"]);
      expect(migrated.code, migrated.stderr).toBe(0);
      const before = await snapshot();
      const grant = `an owner of the schema can grant what strata needs: grant usage on schema strata to ${role}; grant select, insert, update, delete on all tables in schema strata to ${role}`;

      for (const args of [
        ["list"],
        ["costs"],
        ["db", "status"],
        ["materialize", "--select", "*"],
      ]) {
        expect(await refused(args)).toBe(
          `strata: the database role "${role}" lacks USAGE on schema strata and SELECT on its tables; ${grant}`,
        );
      }

      await admin(adminUrl, `grant usage on schema strata to ${role}`);
      expect(await refused(["runs"])).toBe(
        `strata: the database role "${role}" lacks SELECT on its tables; ${grant}`,
      );

      // reading is enough for the ledger; commands that write name what was refused
      await admin(adminUrl, `grant select on all tables in schema strata to ${role}`);
      for (const args of [["costs"], ["list"]]) {
        const read = await as(weakUrl, args);
        expect(read.code, read.stderr).toBe(0);
      }
      for (const args of [
        ["materialize", "--select", "*"],
        ["runs", "prune", "--older-than", "0d"],
      ]) {
        const line = await refused(args);
        expect(line).toMatch(
          new RegExp(
            `^strata: the database role "${role}" may not do what this command needs \\(permission denied [^)]+\\); `,
          ),
        );
        expect(line).toContain(
          args[0] === "runs" ? `grant temporary on database ${database} to ${role}` : grant,
        );
      }
      expect(await snapshot()).toEqual(before);

      await admin(
        adminUrl,
        `grant insert, update, delete on all tables in schema strata to ${role}`,
      );
      const built = await as(weakUrl, ["materialize", "--select", "*"]);
      expect(built.code, built.stderr).toBe(0);
    });
  },
);
