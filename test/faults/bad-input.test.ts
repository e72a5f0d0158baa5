import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateProject } from "../../src/assets/validate-project.js";
import {
  parseOlderThan,
  parsePositiveInt,
  parseSince,
  parseUsd,
} from "../../src/cli/option-parsers.js";
import { type LoadedProject, loadProject } from "../../src/cli/project-loader.js";
import type { StrataErrorCode } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import { selectAssets } from "../../src/lineage/selection-evaluator.js";
import { planMaterialization } from "../../src/materialize/materialization-plan.js";
import { type Simulator, startSimulator } from "../../src/sim/simulator.js";
import { findRun } from "../../src/store/run-queries.js";
import {
  embeddedDataDir,
  openEmbeddedStore,
  openPostgresStore,
  type Store,
} from "../../src/store/store.js";
import { normalizeComputeResult } from "../../src/values/compute-result.js";
import { type DatabaseSnapshot, snapshotDatabase } from "../helpers/db-snapshot.js";
import { createProjectFixture, type ProjectFixture } from "../helpers/project-fixture.js";
import type { CliResult } from "../helpers/run-cli.js";
import { createTestDatabase } from "../helpers/test-store.js";

// One table of malformed inputs. Each row is checked twice: in this process through the library
// function the CLI calls (for the exact error code), and through the compiled CLI (`npm run
// build` first) for exit code 2, a one-line message naming the problem and a database left
// exactly as it was. Inputs refused before anything runs share one project directory (each row
// has its own project file, passed with --project) and one database: Postgres when
// TEST_DATABASE_URL is set, else the embedded database, where processes that open it take turns.
// Inputs only found while a run is under way (a compute returning a non-row value, bad document
// ids, an unknown model, a document over the context window) are recorded as a failed run.

const POSTGRES = process.env.TEST_DATABASE_URL !== undefined;

const HEADER = `import { asset, dailyPartitions, defineProject, hourlyPartitions, staticPartitions } from "strata";
const rows = async () => [{ id: "1", text: "x" }];
`;

const BASE_ASSETS = `
export const documents = asset({
  key: "raw/documents",
  group: "ingest",
  partitions: staticPartitions(["en", "de"]),
  compute: rows,
});
export const analyses = asset({
  key: "analyses",
  deps: { documents },
  partitions: staticPartitions(["en", "de"]),
  compute: rows,
});
export const events = asset({
  key: "events",
  partitions: dailyPartitions({ start: "2026-01-01" }),
  compute: rows,
});
export const report = asset({ key: "report", compute: rows });
`;

const MODELS = `
  endpoints: { local: { baseURL: "http://127.0.0.1:9/v1" } },
  models: {
    small: {
      endpoint: "local",
      name: "m",
      price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
    },
  },`;

/** The valid project every row that is not about the project file runs against. */
const BASE_PROJECT = `${HEADER}${BASE_ASSETS}
export default defineProject({
  assets: [documents, analyses, events, report],${MODELS}
});
`;

/** A project file whose body follows the import and a `rows` compute. */
const projectWith = (body: string) => `${HEADER}${body}\n`;

interface RefusedContext {
  /** The row's project file (the base project when the row has none of its own). */
  readonly file: string;
  readonly base: LoadedProject;
  readonly store: () => Promise<Store>;
  /** A run that succeeded. */
  readonly succeededRun: string;
}

/** An input refused before anything runs: exit 2, the exact code, nothing recorded. */
interface Refused {
  /** Reads after "refuses ...". */
  readonly name: string;
  readonly code: StrataErrorCode;
  /** The row's own project file; without it, the base project. */
  readonly project?: string;
  /** The CLI arguments, after `--project FILE` (and `--database-url` on Postgres). */
  readonly args: (ctx: RefusedContext) => ReadonlyArray<string>;
  /** Texts the one-line message contains. */
  readonly says: (ctx: RefusedContext) => ReadonlyArray<string>;
  /** Texts the message must never contain (a password given in the input). */
  readonly never?: ReadonlyArray<string>;
  /** Environment variables the CLI runs with. */
  readonly env?: NodeJS.ProcessEnv;
  /** The library call the CLI makes for this input; it must reject with `code`. */
  readonly inProcess?: (ctx: RefusedContext) => Promise<unknown> | unknown;
  /** The command opens the database (on the embedded one, such commands take turns). */
  readonly opensStore?: boolean;
  /** Leave out `--project`: the row passes its own. */
  readonly noProjectFlag?: boolean;
  /** Texts stderr must never contain (a password). */
  readonly hides?: ReadonlyArray<string>;
}

const load = (ctx: RefusedContext) => loadProject(ctx.file);
const plan = (ctx: RefusedContext, request: Parameters<typeof planMaterialization>[1]) =>
  planMaterialization(ctx.base.graph, { now: new Date("2026-03-01T12:00:00Z"), ...request });

/** Endpoint base URLs refused at load: what is wrong, the URL, and what the message says. */
const ENDPOINT_URLS: ReadonlyArray<readonly [string, string, string]> = [
  ["without a scheme", "localhost:1/v1", 'it has no scheme; write "http://localhost:1/v1"'],
  ["with a scheme other than http(s)", "ftp://127.0.0.1/v1", 'its scheme "ftp" is not http'],
  ["that does not parse", "http://127.0.0.1:99999/v1", "it is not a URL"],
  ["with credentials in it", "http://admin:hunter2@127.0.0.1:9/v1", "it has credentials in it"],
  ["that is empty", "", "it is empty"],
];

const REFUSED: ReadonlyArray<Refused> = [
  // project files that throw, export nothing or the wrong thing
  {
    name: "a project file that throws while loading, naming the line",
    code: "project_load",
    project: projectWith(`throw new Error("the config server is down");`),
    args: () => ["list"],
    says: (c) => [`project file "${c.file}" failed to load at line 3`, "the config server is down"],
    inProcess: load,
  },
  {
    name: "a project file with a syntax error, naming line and column",
    code: "project_load",
    project: projectWith(`export default defineProject({ assets: [ });`),
    args: () => ["list"],
    // The CLI says "has a syntax error at line 3, column 43"; under vitest the transform differs.
    says: (c) => [`project file "${c.file}"`, "at line 3"],
    inProcess: load,
  },
  {
    name: "a project file that exports nothing",
    code: "bad_project",
    project: projectWith(
      `export const documents = asset({ key: "raw/documents", compute: rows });`,
    ),
    args: () => ["materialize", "--select", "*"],
    says: (c) => [`project file "${c.file}" has no default export`, "export default defineProject"],
    inProcess: load,
  },
  {
    name: "a project file that exports a plain object instead of defineProject()",
    code: "bad_project",
    project: projectWith(`export default { assets: [] };`),
    args: () => ["list"],
    says: () => ["exports a plain object by default", "wrap it in defineProject()"],
    inProcess: load,
  },
  {
    name: "a project file that exports a number",
    code: "bad_project",
    project: projectWith(`export default 42;`),
    args: () => ["lineage"],
    says: () => ["exports a number by default, not a project"],
    inProcess: load,
  },
  {
    name: "a project file that exports a function",
    code: "bad_project",
    project: projectWith(`export default () => defineProject({ assets: [] });`),
    args: () => ["list"],
    says: () => ["exports a function by default, not a project"],
    inProcess: load,
  },
  {
    name: "a project file that does not exist",
    code: "project_load",
    args: (c) => ["--project", join(c.base.dir, "missing.config.ts"), "list"],
    noProjectFlag: true,
    says: (c) => [`project file "${join(c.base.dir, "missing.config.ts")}" not found`],
    inProcess: (c) => loadProject(join(c.base.dir, "missing.config.ts")),
  },
  // the graph
  {
    name: "a cycle of three assets, naming its path",
    code: "cycle",
    project: projectWith(`
const a = asset({ key: "a", deps: { b: "b" }, compute: rows });
const b = asset({ key: "b", deps: { c: "c" }, compute: rows });
const c = asset({ key: "c", deps: { a }, compute: rows });
export default defineProject({ assets: [a, b, c] });`),
    args: () => ["materialize", "--select", "*"],
    says: () => ["cycle", "a → b → c → a"],
    inProcess: load,
  },
  {
    name: "an asset that depends on itself",
    code: "cycle",
    project: projectWith(`
const a = asset({ key: "loop", deps: { self: "loop" }, compute: rows });
export default defineProject({ assets: [a] });`),
    args: () => ["list"],
    says: () => ['asset "loop" depends on itself (loop → loop)', 'remove its dep "self"'],
    inProcess: load,
  },
  {
    name: "a duplicate asset key",
    code: "duplicate_key",
    project: projectWith(`
const a = asset({ key: "analyses", compute: rows });
const b = asset({ key: "analyses", group: "other", compute: rows });
export default defineProject({ assets: [a, b] });`),
    args: () => ["materialize", "--select", "analyses"],
    says: () => ['asset key "analyses" is defined 2 times'],
    inProcess: load,
  },
  {
    name: "an unknown dep, suggesting the closest key",
    code: "unknown_dep",
    project: projectWith(`
const documents = asset({ key: "raw/documents", compute: rows });
const analyses = asset({ key: "analyses", deps: { docs: "raw/document" }, compute: rows });
export default defineProject({ assets: [documents, analyses] });`),
    args: () => ["lineage", "--format", "json"],
    says: () => [
      'asset "analyses" depends on unknown asset "raw/document"; did you mean "raw/documents"?',
    ],
    inProcess: load,
  },
  {
    name: "an asset key with a space in it",
    code: "invalid_key",
    project: projectWith(`
const a = asset({ key: "raw documents", compute: rows });
export default defineProject({ assets: [a] });`),
    args: () => ["list"],
    says: () => ['asset key "raw documents" is invalid'],
    inProcess: load,
  },
  {
    name: "a model on an unknown endpoint, suggesting the closest",
    code: "unknown_endpoint",
    project: projectWith(`
const a = asset({ key: "a", compute: rows });
export default defineProject({
  assets: [a],
  endpoints: { local: { baseURL: "http://127.0.0.1:9/v1" } },
  models: { small: { endpoint: "locl", name: "m", price: { inputPerMTok: 1, outputPerMTok: 1 } } },
});`),
    args: () => ["materialize", "--select", "a"],
    says: () => ['model "small" uses unknown endpoint "locl"', 'did you mean "local"?'],
    inProcess: load,
  },
  {
    name: "a model with a negative price",
    code: "invalid_definition",
    project: projectWith(`
const a = asset({ key: "a", compute: rows });
export default defineProject({
  assets: [a],
  endpoints: { local: { baseURL: "http://127.0.0.1:9/v1" } },
  models: { small: { endpoint: "local", name: "m", price: { inputPerMTok: -1, outputPerMTok: 1 } } },
});`),
    args: () => ["list"],
    says: () => ['model "small" has price.inputPerMTok -1'],
    inProcess: load,
  },
  ...ENDPOINT_URLS.map(
    ([what, baseURL, reason]): Refused => ({
      name: `an endpoint baseURL ${what}`,
      code: "invalid_definition",
      project: projectWith(`
const a = asset({ key: "a", compute: rows });
export default defineProject({
  assets: [a],
  endpoints: { local: { baseURL: ${JSON.stringify(baseURL)} } },
  models: { small: { endpoint: "local", name: "m" } },
});`),
      args: () => ["materialize", "--select", "a"],
      says: () => ['endpoint "local" has an invalid baseURL', reason],
      never: ["hunter2"],
      inProcess: load,
    }),
  ),
  {
    name: "an OPENAI_BASE_URL without a scheme for an endpoint without baseURL",
    code: "invalid_definition",
    project: projectWith(`
const a = asset({ key: "a", compute: rows });
export default defineProject({
  assets: [a],
  endpoints: { hosted: {} },
  models: { small: { endpoint: "hosted", name: "m" } },
});`),
    env: { OPENAI_BASE_URL: "localhost:1/v1" },
    args: () => ["list"],
    says: () => [
      'endpoint "hosted" has no baseURL, and OPENAI_BASE_URL "localhost:1/v1" is invalid',
      'write "http://localhost:1/v1"',
    ],
    inProcess: async (c) =>
      validateProject((await load(c)).definition, { env: { OPENAI_BASE_URL: "localhost:1/v1" } }),
  },
  {
    name: "a partitioned asset reading an asset with other partitions",
    code: "partition_mismatch",
    project: projectWith(`
const days = asset({ key: "days", partitions: dailyPartitions({ start: "2026-01-01" }), compute: rows });
const langs = asset({ key: "langs", deps: { days }, partitions: staticPartitions(["en"]), compute: rows });
export default defineProject({ assets: [days, langs] });`),
    args: () => ["list"],
    says: () => ['"langs"', '"days"'],
    inProcess: load,
  },
  // selections
  {
    name: "a selection that ends in the middle, naming the column",
    code: "bad_selection",
    args: () => ["materialize", "--select", "key:report and"],
    says: () => ['unexpected "and" at column 12 in "key:report and"'],
    inProcess: (c) => plan(c, { selection: "key:report and" }),
  },
  {
    name: "a selection with an unclosed parenthesis",
    code: "bad_selection",
    args: () => ["list", "--select", "(key:report or key:events"],
    says: () => ['"(key:report or key:events"', "column"],
    inProcess: (c) => selectAssets("(key:report or key:events", c.base.graph),
    opensStore: true,
  },
  {
    name: "a selection with an unknown attribute",
    code: "bad_selection",
    args: () => ["lineage", "--select", "colour:red"],
    says: () => ['"colour:red"', "column 1"],
    inProcess: (c) => selectAssets("colour:red", c.base.graph),
  },
  {
    name: "a selection with a stray character",
    code: "bad_selection",
    args: () => ["materialize", "--select", "report;"],
    says: () => ['"report;"', "column 7"],
    inProcess: (c) => plan(c, { selection: "report;" }),
  },
  {
    name: "a selection for `costs --asset` that does not parse",
    code: "bad_selection",
    args: () => ["costs", "--asset", "not"],
    says: () => ['"not"', "column"],
    inProcess: (c) => selectAssets("not", c.base.graph),
    opensStore: true,
  },
  {
    name: "a selection that matches no asset",
    code: "empty_selection",
    args: () => ["materialize", "--select", "key:nothing/here"],
    says: () => ['selection "key:nothing/here" matches no asset', "strata list"],
    inProcess: (c) => plan(c, { selection: "key:nothing/here" }),
  },
  {
    name: "a group selection that matches no asset",
    code: "empty_selection",
    args: () => ["materialize", "--select", "group:nlp", "--dry-run"],
    says: () => ['selection "group:nlp" matches no asset'],
    inProcess: (c) => plan(c, { selection: "group:nlp" }),
  },
  {
    name: "`lineage` of an unknown asset, suggesting the closest",
    code: "empty_selection",
    args: () => ["lineage", "reprot"],
    says: () => ['no asset has the key "reprot"; did you mean "report"?'],
  },
  {
    name: "a keyword of the grammar alone as a selection, saying to write key:",
    code: "bad_selection",
    args: () => ["materialize", "--select", "sinks"],
    says: () => [
      'unexpected keyword "sinks" at column 1 in "sinks"; write key:sinks for the asset named "sinks", or sinks(...)',
    ],
    inProcess: (c) => plan(c, { selection: "sinks" }),
  },
  {
    name: "an attribute name alone as a selection",
    code: "bad_selection",
    args: () => ["list", "--select", "group"],
    says: () => ['unexpected keyword "group" at column 1', "write key:group", "or group:VALUE"],
    inProcess: (c) => selectAssets("group", c.base.graph),
    opensStore: true,
  },
  {
    name: "an operator alone as a selection",
    code: "bad_selection",
    args: () => ["lineage", "--select", "AND"],
    says: () => ['unexpected keyword "AND" at column 1 in "AND"; write key:"AND"'],
    inProcess: (c) => selectAssets("AND", c.base.graph),
  },
  {
    name: "a selection of 100k open parentheses, naming the nesting limit",
    code: "bad_selection",
    args: () => ["lineage", "--select", "(".repeat(100_000)],
    says: () => ["selection nests more than 100 levels deep at column 101", "of 100000)"],
    inProcess: () => selectAssets("(".repeat(100_000), AssetGraph.fromAssets([])),
  },
  {
    name: "a selection of 30k nots",
    code: "bad_selection",
    args: () => ["materialize", "--select", `${"not ".repeat(30_000)}report`],
    says: () => ["selection nests more than 100 levels deep at column 401"],
    inProcess: (c) => plan(c, { selection: `${"not ".repeat(30_000)}report` }),
  },
  // partitions
  {
    name: "a partitioned asset without --partition",
    code: "bad_partition",
    args: () => ["materialize", "--select", "raw/documents"],
    says: () => ['asset "raw/documents" is partitioned', "--partition"],
    inProcess: (c) => plan(c, { selection: "raw/documents" }),
  },
  {
    name: "an unknown static partition key, suggesting the closest",
    code: "bad_partition",
    args: () => ["materialize", "--select", "raw/documents", "--partition", "enn"],
    says: () => ['"enn" is not a partition of asset "raw/documents"', 'did you mean "en"?'],
    inProcess: (c) => plan(c, { selection: "raw/documents", partitions: ["enn"] }),
  },
  {
    name: "--partition for an asset that is not partitioned",
    code: "bad_partition",
    args: () => ["materialize", "--select", "report", "--partition", "en"],
    says: () => ["no selected asset is partitioned"],
    inProcess: (c) => plan(c, { selection: "report", partitions: ["en"] }),
  },
  {
    name: "a daily partition key that is not a date",
    code: "bad_partition",
    args: () => ["materialize", "--select", "events", "--partition", "2026-02-30"],
    says: () => ['"2026-02-30" is not a partition of asset "events"'],
    inProcess: (c) => plan(c, { selection: "events", partitions: ["2026-02-30"] }),
  },
  {
    name: "a partition range without ..",
    code: "bad_partition",
    args: () => ["materialize", "--select", "events", "--partition-range", "2026-01-05"],
    says: () => ['partition range "2026-01-05" is not of the form FROM..TO'],
    inProcess: (c) => plan(c, { selection: "events", partitionRange: "2026-01-05" }),
  },
  {
    name: "a partition range that runs backwards",
    code: "bad_partition",
    args: () => [
      "materialize",
      "--select",
      "events",
      "--partition-range",
      "2026-01-05..2026-01-02",
    ],
    says: () => ['partition range "2026-01-05..2026-01-02" runs backwards'],
    inProcess: (c) => plan(c, { selection: "events", partitionRange: "2026-01-05..2026-01-02" }),
  },
  {
    name: "a partition range starting before the first partition",
    code: "bad_partition",
    args: () => [
      "materialize",
      "--select",
      "events",
      "--partition-range",
      "2025-12-30..2026-01-02",
    ],
    says: () => ['"2025-12-30" is not a partition of daily from 2026-01-01'],
    inProcess: (c) => plan(c, { selection: "events", partitionRange: "2025-12-30..2026-01-02" }),
  },
  {
    name: "a partition range over static partitions with an unknown end",
    code: "bad_partition",
    args: () => ["materialize", "--select", "raw/documents", "--partition-range", "en..fr"],
    says: () => ['"fr" is not a partition of'],
    inProcess: (c) => plan(c, { selection: "raw/documents", partitionRange: "en..fr" }),
  },
  {
    name: "a partition range of decades of hours, naming the limit per run",
    code: "bad_partition",
    project: projectWith(`
const hours = asset({ key: "hours", partitions: hourlyPartitions({ start: "1970-01-01" }), compute: rows });
export default defineProject({ assets: [hours] });`),
    args: () => [
      "materialize",
      "--select",
      "hours",
      "--partition-range",
      "1970-01-01-00:00..2025-12-31-23:00",
    ],
    says: () => [
      '--partition-range "1970-01-01-00:00..2025-12-31-23:00" selects 490896 partitions; one run builds at most 10000',
      "--partition-range 1970-01-01-00:00..1971-02-21-15:00",
    ],
    inProcess: async (c) =>
      planMaterialization((await load(c)).graph, {
        selection: "hours",
        partitionRange: "1970-01-01-00:00..2025-12-31-23:00",
      }),
  },
  {
    name: "time partitions with millions of keys",
    code: "invalid_definition",
    project: projectWith(`
const hours = asset({ key: "hours", partitions: hourlyPartitions({ start: "1800-01-01" }), compute: rows });
export default defineProject({ assets: [hours] });`),
    args: () => ["list"],
    says: () => ["hourly partitions from 1800-01-01-00:00 would have", "at most 1000000 per asset"],
    inProcess: load,
  },
  // options
  {
    name: "a negative --max-cost",
    code: "bad_usage",
    args: () => ["materialize", "--select", "report", "--max-cost=-1"],
    says: () => ['--max-cost must be a non-negative amount of USD such as 5 or 0.25, not "-1"'],
    inProcess: () => parseUsd("-1"),
  },
  {
    name: "a --max-cost that is not a number",
    code: "bad_usage",
    args: () => ["materialize", "--select", "report", "--max-cost", "five"],
    says: () => ["--max-cost must be a non-negative amount of USD", '"five"'],
    inProcess: () => parseUsd("five"),
  },
  {
    name: "a --max-cost in exponent notation",
    code: "bad_usage",
    args: () => ["materialize", "--select", "report", "--max-cost", "1e3"],
    says: () => ["--max-cost must be a non-negative amount of USD", '"1e3"'],
    inProcess: () => parseUsd("1e3"),
  },
  {
    name: "a --max-cost for `runs resume` that is not a number",
    code: "bad_usage",
    args: (c) => ["runs", "resume", c.succeededRun, "--max-cost", "$5"],
    says: () => ["--max-cost must be a non-negative amount of USD", '"$5"'],
    inProcess: () => parseUsd("$5"),
  },
  {
    name: "a --concurrency of 0",
    code: "bad_usage",
    args: () => ["materialize", "--select", "report", "--concurrency", "0"],
    says: () => ['--concurrency must be a positive integer, not "0"'],
    inProcess: () => parsePositiveInt("0", "--concurrency"),
  },
  {
    name: "a --since that is neither a date nor a duration",
    code: "bad_usage",
    args: () => ["costs", "--since", "last tuesday"],
    says: () => ['--since "last tuesday" is neither a date'],
    inProcess: () => parseSince("last tuesday"),
  },
  {
    name: "a --since in the year 0",
    code: "bad_usage",
    args: () => ["costs", "--since", "0000-01-01"],
    says: () => ['--since "0000-01-01" is out of range: use a date from 0001-01-01 to 9999-12-31'],
    inProcess: () => parseSince("0000-01-01"),
  },
  {
    name: "a --since in a five-digit year",
    code: "bad_usage",
    args: () => ["costs", "--since", "99999-01-01"],
    says: () => ['--since "99999-01-01" is out of range'],
    inProcess: () => parseSince("99999-01-01"),
  },
  {
    name: "a --since duration reaching before the year 1",
    code: "bad_usage",
    args: () => ["costs", "--since", "100000000d"],
    says: () => ['--since "100000000d" reaches back before the year 1; use at most'],
    inProcess: () => parseSince("100000000d"),
  },
  {
    name: "an --older-than too long for any date",
    code: "bad_usage",
    args: () => ["runs", "prune", "--older-than", "99999999999999999999d"],
    says: () => ['--older-than "99999999999999999999d" reaches back before the year 1'],
    inProcess: () => parseOlderThan("99999999999999999999d"),
  },
  {
    name: "an --older-than in exponent notation",
    code: "bad_usage",
    args: () => ["runs", "prune", "--older-than", "1e400d"],
    says: () => ['--older-than must be an age such as 30d or 12h, not "1e400d"'],
    inProcess: () => parseOlderThan("1e400d"),
  },
  // database URLs
  {
    name: "a database URL whose password has a bad %-escape, never showing it",
    code: "db_unreachable",
    args: () => ["--database-url", "postgres://app:Pa55word%zz@127.0.0.1:5432/db", "runs"],
    says: () => ["the database URL's password has a malformed %-escape; write a literal % as %25"],
    hides: ["Pa55word"],
    inProcess: () => openPostgresStore("postgres://app:Pa55word%zz@127.0.0.1:5432/db"),
  },
  {
    name: "a database URL with a port past 65535",
    code: "db_unreachable",
    args: () => ["--database-url", "postgres://app:Pa55word@127.0.0.1:99999/db", "costs"],
    says: () => ["the database URL has an invalid port; use a number from 1 to 65535"],
    hides: ["Pa55word"],
    inProcess: () => openPostgresStore("postgres://app:Pa55word@127.0.0.1:99999/db"),
  },
  {
    name: "a database URL of another scheme",
    code: "db_unreachable",
    args: () => ["--database-url", "mysql://app:Pa55word@127.0.0.1/db", "db", "status"],
    says: () => ['the database URL has protocol "mysql:"; use postgres://'],
    hides: ["Pa55word"],
    inProcess: () => openPostgresStore("mysql://app:Pa55word@127.0.0.1/db"),
  },
  // runs
  {
    name: "`runs show` of an unknown run",
    code: "run_not_found",
    args: () => ["runs", "show", "no-such-run"],
    says: () => ['no run has the id "no-such-run"'],
    inProcess: async (c) => findRun((await c.store()).db, "no-such-run"),
    opensStore: true,
  },
  {
    name: "`costs --run` of an unknown run",
    code: "run_not_found",
    args: () => ["costs", "--run", "no-such-run"],
    says: () => ['no run has the id "no-such-run"'],
    opensStore: true,
  },
  {
    name: "`runs resume` of a run that succeeded",
    code: "run_not_resumable",
    args: (c) => ["runs", "resume", c.succeededRun],
    says: (c) => [`run ${c.succeededRun} succeeded; there is nothing to resume`],
    opensStore: true,
  },
];

/** A database change or a CLI run of the embedded database waits for the one before it. */
function serializer(): <T>(body: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (body) => {
    const next = tail.then(body, body);
    tail = next.catch(() => {});
    return next;
  };
}

/** A project directory, its database and the way to run the CLI and snapshot the database. */
interface Workspace {
  readonly project: ProjectFixture;
  /**
   * Runs the CLI in the project; `shared` commands never open the database, so on the embedded
   * one they need not wait their turn.
   */
  cli(
    args: ReadonlyArray<string>,
    options?: { env?: NodeJS.ProcessEnv; shared?: boolean },
  ): Promise<CliResult>;
  /** Runs `body` with the database open in this process (taking turns on the embedded one). */
  withStore<T>(body: (store: Store) => Promise<T>): Promise<T>;
  snapshot(): Promise<DatabaseSnapshot>;
  dispose(): Promise<void>;
}

async function createWorkspace(files: Readonly<Record<string, string>>): Promise<Workspace> {
  if (POSTGRES) {
    const project = await createProjectFixture(files);
    const database = await createTestDatabase();
    const store = await openPostgresStore(database.url);
    return {
      project,
      cli: (args, options) => project.cli(["--database-url", database.url, ...args], options?.env),
      withStore: (body) => body(store),
      snapshot: () => snapshotDatabase(store.db, project.dir),
      dispose: async () => {
        await store.close();
        await database.drop();
        await project.remove();
      },
    };
  }
  const project = await createProjectFixture(files, { migratedDatabase: true });
  const turn = serializer();
  const withStore = <T>(body: (store: Store) => Promise<T>) =>
    turn(async () => {
      const store = await openEmbeddedStore(embeddedDataDir(project.dir));
      try {
        return await body(store);
      } finally {
        await store.close();
      }
    });
  return {
    project,
    cli: (args, options) =>
      options?.shared === true
        ? project.cli(args, options.env)
        : turn(() => project.cli(args, options?.env)),
    withStore,
    snapshot: () => withStore((store) => snapshotDatabase(store.db, project.dir)),
    dispose: project.remove,
  };
}

/** The file name of row `i`'s project. */
const rowFile = (i: number) => `bad-${String(i).padStart(2, "0")}.config.ts`;

const stderrLines = (result: CliResult) =>
  result.stderr.split("\n").filter((line) => line.trim() !== "");

describe("bad input is refused with its code, exit code 2 and nothing recorded", () => {
  let ws: Workspace;
  let ctxOf: (row: Refused, i: number) => RefusedContext;
  let before: DatabaseSnapshot;

  beforeAll(async () => {
    const files: Record<string, string> = { "strata.config.ts": BASE_PROJECT };
    REFUSED.forEach((row, i) => {
      if (row.project !== undefined) files[rowFile(i)] = row.project;
    });
    ws = await createWorkspace(files);
    // One successful run, for the rows about runs; it also syncs the base project's catalog.
    const seeded = await ws.cli(["materialize", "--select", "report", "--json"]);
    expect(seeded.code, seeded.stderr).toBe(0);
    const succeededRun = (JSON.parse(seeded.stdout) as { runId: string }).runId;
    const base = await loadProject(ws.project.file);
    ctxOf = (row, i) => ({
      file: row.project === undefined ? ws.project.file : join(ws.project.dir, rowFile(i)),
      base,
      succeededRun,
      store: () => {
        throw new Error("use ws.withStore");
      },
    });
    before = await ws.snapshot();
    expect(before.rows.runs).toBe(1);
    expect(before.catalogFingerprint).not.toBeNull();
  }, 120_000);

  afterAll(async () => {
    await ws?.dispose();
  });

  it(`has at least 30 malformed inputs (${REFUSED.length})`, () => {
    expect(REFUSED.length).toBeGreaterThanOrEqual(30);
  });

  describe("in the library, with the exact code", () => {
    it.each(REFUSED.map((row, i) => [row.name, row, i] as const).filter(([, r]) => r.inProcess))(
      "refuses %s",
      async (_name, row, i) => {
        const ctx = ctxOf(row, i);
        const call = async () => {
          if (row.opensStore) {
            return ws.withStore((store) =>
              Promise.resolve(row.inProcess!({ ...ctx, store: async () => store })),
            );
          }
          return row.inProcess!(ctx);
        };
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, "the call must throw").toBeInstanceOf(Error);
        expect((error as { code?: string }).code).toBe(row.code);
        for (const text of row.says(ctx)) expect((error as Error).message).toContain(text);
        for (const text of row.never ?? []) expect((error as Error).message).not.toContain(text);
      },
    );
  });

  // Rows run four at a time on Postgres; on the embedded database, commands that open it take
  // turns with each other and with the snapshots.
  describe.concurrent("through the CLI: exit code 2, one line naming it, database unchanged", {
    timeout: 120_000,
  }, () => {
    it.each(REFUSED.map((row, i) => [row.name, row, i] as const))(
      "refuses %s",
      async (_name, row, i) => {
        const ctx = ctxOf(row, i);
        const projectArgs = row.noProjectFlag ? [] : ["--project", ctx.file];
        const result = await ws.cli([...projectArgs, ...row.args(ctx)], {
          shared: row.opensStore !== true,
          ...(row.env !== undefined ? { env: row.env } : {}),
        });
        const lines = stderrLines(result);
        expect(result.code, result.stderr).toBe(2);
        expect(result.stdout).toBe("");
        // one line, unless the message lists several problems
        expect(lines, result.stderr).toHaveLength(1);
        expect(lines[0]).toMatch(/^strata: /);
        for (const text of row.says(ctx)) expect(lines[0]).toContain(text);
        expect(result.stderr).not.toMatch(/\n\s+at |unexpected error/);
        for (const text of row.never ?? []) expect(result.stderr).not.toContain(text);
        for (const secret of row.hides ?? []) expect(result.stderr).not.toContain(secret);
        if (POSTGRES) expect(await ws.snapshot()).toEqual(before);
      },
    );
  });

  it("left the database, the catalog and the stored files exactly as they were", async () => {
    expect(await ws.snapshot()).toEqual(before);
  });
});

/** An input only found while a run is under way: the run is recorded, failed, naming it. */
interface DuringRun {
  readonly name: string;
  /** The asset's key (each row has its own, so rows never share a partition lock). */
  readonly key: string;
  /** The asset's `compute` (source), given `docs` = [{ id, text }] of three small documents. */
  readonly compute: string;
  readonly says: ReadonlyArray<string>;
  /** The code the library gives for the value, where one call shows it. */
  readonly inProcess?: { readonly code: StrataErrorCode; readonly value: unknown };
  /** The run succeeds (documents allowed to fail): exit 0. */
  readonly succeeds?: boolean;
  /** Documents that must have a succeeded ledger row although another document failed. */
  readonly answered?: ReadonlyArray<string>;
}

const LONG_TEXT = "lorem ipsum dolor sit amet ".repeat(200);

const inferWith = (documents: string, options = "") => `async (ctx) =>
    ctx.infer(${documents}, {
      model: "small",
      id: (d) => d.id,
      messages: (d) => [{ role: "user", content: d.text }],
      params: { max_tokens: 8 },${options}
    })`;

const DURING_RUN: ReadonlyArray<DuringRun> = [
  {
    name: "a compute returning a string",
    key: "returns-string",
    compute: `async () => "done"`,
    says: ['asset "returns-string" returned a string', "array of row objects or an Arrow Table"],
    inProcess: { code: "bad_value", value: "done" },
  },
  {
    name: "a compute returning one row object instead of an array",
    key: "returns-object",
    compute: `async () => ({ id: "1" })`,
    says: ['asset "returns-object" returned an object', "wrap a single row in an array"],
    inProcess: { code: "bad_value", value: { id: "1" } },
  },
  {
    name: "a compute returning an array of numbers",
    key: "returns-numbers",
    compute: `async () => [1, 2, 3]`,
    says: ['asset "returns-numbers" row 0 is a number', "plain object"],
    inProcess: { code: "bad_value", value: [1, 2, 3] },
  },
  {
    name: "a compute that forgot to return",
    key: "returns-nothing",
    compute: `async () => { [{ id: "1" }]; }`,
    says: ['asset "returns-nothing" returned undefined'],
    inProcess: { code: "bad_value", value: undefined },
  },
  {
    name: "a document without an id",
    key: "missing-id",
    compute: inferWith(`[...docs, { text: "no id here" }]`),
    says: ['asset "missing-id": document 3 has no string id'],
  },
  {
    name: "a document id used twice in one step, naming the id",
    key: "duplicate-id",
    compute: inferWith(`[...docs, { id: "d1", text: "again" }]`),
    says: ['asset "duplicate-id": document id "d1" appears twice'],
  },
  {
    name: "a call to an unknown model, suggesting the closest",
    key: "unknown-model",
    compute: inferWith("docs").replace('model: "small"', 'model: "smal"'),
    says: ['asset "unknown-model" calls unknown model "smal"; did you mean "small"?'],
  },
  {
    name: "a document longer than the model's context: it fails, the others are answered",
    key: "too-long",
    compute: inferWith(`[...docs, { id: "huge", text: ${JSON.stringify(LONG_TEXT)} }]`),
    says: ['document "huge": 400', "maximum context length is 200 tokens"],
    answered: ["d1", "d2", "d3"],
  },
  {
    name: "a document longer than the context within maxFailures: the run succeeds without it",
    key: "too-long-allowed",
    compute: inferWith(
      `[...docs, { id: "huge", text: ${JSON.stringify(`${LONG_TEXT} allowed`)} }]`,
      "\n      maxFailures: 1,",
    ),
    says: [],
    succeeds: true,
    answered: ["d1", "d2", "d3"],
  },
];

function duringRunProject(row: DuringRun, simUrl: string): string {
  return `import { asset, defineProject } from "strata";
const docs = [1, 2, 3].map((i) => ({ id: \`d\${i}\`, text: \`${row.key} document \${i}\` }));
export const bad = asset({ key: ${JSON.stringify(row.key)}, compute: ${row.compute} });
export default defineProject({
  assets: [bad],
  endpoints: { sim: { baseURL: ${JSON.stringify(simUrl)} } },
  models: {
    small: {
      endpoint: "sim",
      name: "m",
      price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
      maxAttempts: 1,
    },
  },
});
`;
}

describe("bad input found during a run is recorded as a failed run naming it (exit code 1)", () => {
  let ws: Workspace;
  let sim: Simulator;

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, contextWindow: 200 });
    const files: Record<string, string> = {};
    DURING_RUN.forEach((row, i) => {
      files[rowFile(i)] = duringRunProject(row, sim.url);
    });
    ws = await createWorkspace(files);
  });

  afterAll(async () => {
    await ws?.dispose();
    await sim?.close();
  });

  it.each(
    DURING_RUN.filter((row) => row.inProcess !== undefined).map((row) => [row.name, row] as const),
  )("gives %s the code bad_value in the library", (_name, row) => {
    let error: unknown;
    try {
      normalizeComputeResult(row.inProcess!.value, row.key);
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string } | undefined)?.code).toBe(row.inProcess!.code);
    for (const text of row.says) expect((error as Error).message).toContain(text);
  });

  describe.concurrent("through the CLI", { timeout: 120_000 }, () => {
    it.each(DURING_RUN.map((row, i) => [row.name, row, i] as const))(
      "records %s",
      async (_name, row, i) => {
        const file = join(ws.project.dir, rowFile(i));
        const result = await ws.cli(
          ["--project", file, "materialize", "--select", row.key, "--json"],
          { env: { OPENAI_API_KEY: "sk-bad-input" } },
        );
        expect(result.code, result.stderr).toBe(row.succeeds ? 0 : 1);
        const output = JSON.parse(result.stdout) as { runId: string; status: string };
        expect(output.status).toBe(row.succeeds ? "succeeded" : "failed");
        const recorded = await ws.withStore(async (store) => {
          const run = await sql<{ status: string; error: string | null }>`
            select status, error from strata.runs where id = ${output.runId}`.execute(store.db);
          const materializations = await sql<{ status: string; error: string | null }>`
            select status, error from strata.materializations
            where asset_key = ${row.key}`.execute(store.db);
          const calls = await sql<{ document_id: string; status: string; error: string | null }>`
            select document_id, status, error from strata.inference_calls
            where asset_key = ${row.key} order by document_id`.execute(store.db);
          return { run: run.rows[0], materializations: materializations.rows, calls: calls.rows };
        });
        expect(recorded.run?.status).toBe(output.status);
        if (row.succeeds) {
          expect(recorded.materializations.map((m) => m.status)).toEqual(["succeeded"]);
        } else {
          expect(recorded.materializations.map((m) => m.status)).toEqual(["failed"]);
          for (const text of row.says) {
            expect(recorded.run?.error).toContain(text);
            expect(recorded.materializations[0]?.error).toContain(text);
            expect(result.stderr).toContain(text);
          }
        }
        if (row.answered !== undefined) {
          const byDocument = Object.fromEntries(recorded.calls.map((c) => [c.document_id, c]));
          for (const id of row.answered) expect(byDocument[id]?.status).toBe("succeeded");
          expect(byDocument.huge?.status).toBe("failed");
          expect(byDocument.huge?.error).toMatch(/context|400/i);
        } else {
          // refused before any call
          expect(recorded.calls).toEqual([]);
        }
      },
    );
  });
});
