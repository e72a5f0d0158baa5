import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import { COST_GROUPINGS } from "../../src/store/cost-queries.js";
import { formatUsd } from "../../src/util/usd.js";
import {
  CLI_TEST_OPTIONS,
  createProjectFixture,
  type ProjectFixture,
} from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";

// What a new user sees: a project with an asset key far wider than a terminal, partitioned, and
// a model without a price. These tests run the compiled CLI (`npm run build` first) against a
// simulator in this process.

const LONG_KEY = `warehouse/${"customer_support_tickets/".repeat(4)}classified_with_sentiment`;

function project(simUrl: string): string {
  return `import { asset, defineProject, staticPartitions } from "strata";

const languages = staticPartitions(["en", "de"]);
export const documents = asset({
  key: "raw/documents",
  partitions: languages,
  compute: async (ctx) => [
    { id: \`\${ctx.partitionKey}-1\`, text: "The export fails for large reports." },
    { id: \`\${ctx.partitionKey}-2\`, text: "Please reset my password." },
  ],
});
export const analyses = asset({
  key: ${JSON.stringify(LONG_KEY)},
  partitions: languages,
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "small",
      id: (doc) => doc.id,
      messages: (doc) => [{ role: "user", content: \`Classify: \${doc.text}\` }],
      params: { max_tokens: 16, temperature: 0 },
    }),
});
export const notes = asset({
  key: "notes",
  deps: { documents },
  compute: async (ctx, { documents }) =>
    ctx.infer(documents, {
      model: "free",
      id: (doc) => doc.id,
      messages: (doc) => [{ role: "user", content: \`Note: \${doc.text}\` }],
      params: { max_tokens: 16, temperature: 0 },
    }),
});

export default defineProject({
  assets: [documents, analyses, notes],
  endpoints: { sim: { baseURL: ${JSON.stringify(simUrl)} } },
  models: {
    small: { endpoint: "sim", name: "sim-small", price: { inputPerMTok: 0.15, outputPerMTok: 0.6 } },
    free: { endpoint: "sim", name: "sim-free" },
  },
});
`;
}

function ok(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

/** Asserts that no line of `text` is wider than 80 columns, and returns the text. */
function fits(text: string, what: string): string {
  for (const line of text.split("\n")) {
    expect([...line].length, `${what}:\n${text}`).toBeLessThanOrEqual(80);
  }
  return text;
}

/** The line of `text` that starts with `start`. */
function lineStarting(text: string, start: string): string {
  const line = text.split("\n").find((l) => l.startsWith(start));
  expect(line, `no line starts with ${JSON.stringify(start)} in:\n${text}`).toBeDefined();
  return line ?? "";
}

const WARNING =
  'strata: warning: model "free" has no price, so its calls are recorded at $0 and shown as unpriced in "strata costs"';

describe("strata's output for a long asset key and a model without a price", () => {
  let sim: Simulator;
  let fixture: ProjectFixture;
  let run: { id: string; costUsd: string };
  let summary: CliResult;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0 });
    fixture = await createProjectFixture(project(sim.url), { migratedDatabase: true });
    summary = await fixture.cli(["materialize", "--select", "*", "--all-partitions"], {
      OPENAI_API_KEY: "sk-test",
    });
    const runs = JSON.parse(ok(await fixture.cli(["runs", "--json"]))) as Array<{
      id: string;
      costUsd: string;
    }>;
    run = runs[0]!;
  }, 120_000);

  afterAll(async () => {
    await fixture?.remove();
    await sim?.close();
  });

  it(
    "builds every partition with --all-partitions and warns once that a model has no price",
    CLI_TEST_OPTIONS,
    () => {
      expect(summary.code, summary.stderr).toBe(0);
      expect(summary.stderr.split(WARNING)).toHaveLength(2);
      for (const partition of ["en", "de"]) {
        expect(summary.stdout).toMatch(
          new RegExp(`^raw/documents\\[${partition}\\] +succeeded`, "m"),
        );
      }
    },
  );

  it(
    "fits the run summary in 80 columns, the key shortened in the middle, dollars in one format",
    CLI_TEST_OPTIONS,
    () => {
      const text = fits(summary.stdout, "materialize");
      // the start and the end of the key survive, and the partition
      expect(text).toMatch(/^wareh\S*…\S*ment\[en\] +succeeded +2 /m);
      expect(Number(run.costUsd)).toBeGreaterThan(0);
      const dollars = formatUsd(run.costUsd);
      expect(lineStarting(text, "total").endsWith(` ${dollars}`)).toBe(true);
      expect(text).toContain(`succeeded; cost ${dollars}`);
    },
  );

  it("fits runs and runs show in 80 columns, with the same dollars", CLI_TEST_OPTIONS, async () => {
    const dollars = formatUsd(run.costUsd);
    const runs = fits(ok(await fixture.cli(["runs"])), "runs");
    // the id keeps its prefix, which is what runs show takes
    const row = lineStarting(runs, run.id.slice(0, 12));
    expect(row).toContain(` ${dollars} `);
    expect(row).toContain(" succeeded ");
    const show = fits(ok(await fixture.cli(["runs", "show", run.id])), "runs show");
    expect(show).toContain(`cost      ${dollars}`);
    expect(show).toMatch(/^wareh\S*…\S*ment\[de\] +succeeded +2 /m);
    expect(show).toMatch(/^notes +succeeded +4 +.+ +\$0\.00$/m);
  });

  it(
    "fits every costs table in 80 columns, ending with the same total, the unpriced model marked",
    CLI_TEST_OPTIONS,
    async () => {
      const dollars = formatUsd(run.costUsd);
      for (const grouping of COST_GROUPINGS) {
        const table = fits(ok(await fixture.cli(["costs", "--by", grouping])), grouping);
        expect(lineStarting(table, "total"), grouping).toContain(dollars);
        // the en and de documents ask the same questions: each request is paid once per run
        expect(table, grouping).toContain("* 2 call(s) had no price");
      }
      const byModel = ok(await fixture.cli(["costs", "--by", "model"]));
      expect(lineStarting(byModel, "free")).toMatch(/^free +2 +2 +\d+ +\d+ +\d+ +unpriced$/);
      expect(lineStarting(byModel, "small")).toContain(dollars);
      // the whole total has unpriced calls in it: marked
      expect(lineStarting(byModel, "total")).toMatch(/\*$/);
      const json = JSON.parse(
        ok(await fixture.cli(["costs", "--by", "model", "--format", "json"])),
      );
      expect(
        json.map((r: { model: string | null; unpricedCalls: number }) => [
          r.model,
          r.unpricedCalls,
        ]),
      ).toEqual([
        ["free", 2],
        ["small", 0],
        [null, 2],
      ]);
    },
  );

  it("fits the asset list in 80 columns", CLI_TEST_OPTIONS, async () => {
    const list = fits(ok(await fixture.cli(["list"])), "list");
    expect(list).toMatch(/^wareh\S*…\S*ntiment +default +fresh/m);
  });

  it("ends a dry run with the totals of the plan, in 80 columns", CLI_TEST_OPTIONS, async () => {
    const dry = await fixture.cli([
      "materialize",
      "--select",
      "*",
      "--all-partitions",
      "--dry-run",
      "--no-cache",
    ]);
    const text = fits(ok(dry), "dry run");
    // two documents for each of the two partitions, four for notes: eight documents; the en and
    // de documents ask the same questions, so half of them repeat a request of the plan
    expect(lineStarting(text, "total")).toMatch(/^total +8 +4 +\d+ +64 +\$[\d.]+ – \$[\d.]+$/);
    expect(text).toMatch(/^estimated total: \$[\d.]+ – \$[\d.]+ \(8 documents, 4 cached\)$/m);
    // the step of the model without a price, and what it reads
    expect(text).toMatch(/^notes +4 +2 +\d+ +32 +unpriced$/m);
    expect(text).toMatch(/^ {2}reads raw\/documents \(all\)$/m);
    const json = JSON.parse(
      ok(
        await fixture.cli([
          "materialize",
          "--select",
          "*",
          "--all-partitions",
          "--dry-run",
          "--json",
        ]),
      ),
    );
    // without --no-cache the ledger answers every document of this plan
    expect(json.totals).toMatchObject({ documents: 8, cacheHits: 8, costLowUsd: "0" });
  });
});
