// The lineage benchmark: synthetic projects of 10,000 and 100,000 assets (BENCH_LINEAGE_SIZES to
// change), each measured in its own process so peak RSS is per size.
//
// Phases, timed separately: (a) build the definitions with asset() and defineProject, (b)
// validateProject, (c) AssetGraph.fromAssets + toposort, (d) 100 mixed selections with
// selectAssets (the first one builds the selection index), then lineageToJson + JSON.stringify in
// process, and the real CLI `strata lineage --format json` on a generated project file, twice:
// cold (opens a new embedded PGlite database, migrates and syncs N assets into the catalog) and
// warm (same catalog: the sync is skipped by its fingerprint).

import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { collectGarbage, emitResult, maxRssKiB, runNodeChild, timed } from "./lib/bench-child.mjs";
import {
  buildProject,
  edgeCount,
  generateSelections,
  generateSpec,
} from "./lib/synthetic-project.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");
const CLI = join(ROOT, "dist", "cli", "main.js");
const SELECTIONS = 100;
const GIB_KIB = 1024 * 1024;

const DAGSTER = [
  "Dagster: 2,000 assets take over 60 s to load (dagster#16129), 30 ms per asset",
  "Dagster: the asset graph of 5,000 assets took 6.5 s to build before a fix (dagster#20567), 1.3 ms per asset",
];

if (process.argv[2] === "--worker") {
  emitResult(await measureSize(Number(process.argv[3])));
} else {
  const sizes = (process.env.BENCH_LINEAGE_SIZES ?? "10000,100000").split(",").map(Number);
  const cases = [];
  for (const n of sizes) {
    process.stderr.write(`lineage: ${n.toLocaleString("en-US")} assets ...\n`);
    const worker = await runNodeChild(fileURLToPath(import.meta.url), ["--worker", String(n)]);
    cases.push(withGoals(worker));
  }
  emitResult({ name: "lineage", cases, notes: [...DAGSTER, ...comparisons(cases)] });
}

/** Runs every phase for `n` assets in this process and returns one case of the result. */
async function measureSize(n) {
  const strata = await import(pathToFileURL(join(ROOT, "dist", "index.js")).href);
  const startGen = performance.now();
  const spec = generateSpec(n, 1);
  const selections = generateSelections(spec, SELECTIONS, 7);
  const genMs = performance.now() - startGen;

  const [project, buildMs] = await timed(() => buildProject(strata, spec));
  const [, validateMs] = await timed(() => strata.validateProject(project));
  const [graph, graphMs] = await timed(() => {
    const g = strata.AssetGraph.fromAssets(project.assets);
    g.toposort();
    return g;
  });
  let firstSelectionMs = 0;
  let slowest = { ms: 0, selection: "" };
  let selected = 0;
  const [, selectMs] = await timed(() => {
    for (const text of selections) {
      const start = performance.now();
      selected += strata.selectAssets(text, graph).length;
      const ms = performance.now() - start;
      if (firstSelectionMs === 0) firstSelectionMs = ms;
      if (ms > slowest.ms) slowest = { ms, selection: text };
    }
  });
  const rssAfterPhasesKiB = maxRssKiB();
  const [json, jsonMs] = await timed(() =>
    JSON.stringify(strata.lineageToJson(graph, graph.keys()), null, 2),
  );
  const jsonBytes = json.length;

  const cli = await measureCli(spec);
  collectGarbage();
  return {
    name: `${n.toLocaleString("en-US")} assets`,
    n,
    metrics: {
      assets: n,
      edges: edgeCount(spec),
      "generate spec (not timed in goals) ms": genMs,
      "(a) build definitions ms": buildMs,
      "(b) validateProject ms": validateMs,
      "(c) AssetGraph.fromAssets + toposort ms": graphMs,
      [`(d) ${SELECTIONS} selections ms`]: selectMs,
      "    first selection (builds index) ms": firstSelectionMs,
      "    slowest selection ms": slowest.ms,
      "    assets selected in total": selected,
      "(a)-(d) total ms": buildMs + validateMs + graphMs + selectMs,
      "peak RSS after (a)-(d) MiB": rssAfterPhasesKiB / 1024,
      "lineageToJson + stringify in process ms": jsonMs,
      "lineage JSON MiB": jsonBytes / 1024 / 1024,
      "peak RSS in process MiB": maxRssKiB() / 1024,
      "CLI lineage --format json cold ms": cli.cold.ms,
      "CLI cold peak RSS MiB": cli.cold.rssKiB / 1024,
      "CLI lineage --format json warm ms": cli.warm.ms,
      "CLI warm peak RSS MiB": cli.warm.rssKiB / 1024,
    },
    slowestSelection: slowest.selection,
  };
}

/** The goals of the issue, attached to a case by its size. */
function withGoals(c) {
  const m = c.metrics;
  const goals = [];
  if (c.n === 10_000) {
    goals.push({
      name: "build + validate + graph + 100 selections",
      value: m["(a)-(d) total ms"],
      limit: 1000,
      unit: "ms",
    });
  }
  if (c.n === 100_000) {
    goals.push({
      name: "build + validate + graph + 100 selections",
      value: m["(a)-(d) total ms"],
      limit: 10_000,
      unit: "ms",
    });
    goals.push({
      name: "peak RSS in process",
      value: m["peak RSS in process MiB"],
      limit: GIB_KIB / 1024,
      unit: "MiB",
    });
    goals.push({
      name: "peak RSS of the CLI (cold)",
      value: m["CLI cold peak RSS MiB"],
      limit: GIB_KIB / 1024,
      unit: "MiB",
    });
  }
  return { ...c, goals };
}

/** Per-asset comparisons with the numbers from Dagster's tracker (other machines, other work). */
function comparisons(cases) {
  const notes = [];
  for (const c of cases) {
    const m = c.metrics;
    const loadPerAsset = m["CLI lineage --format json cold ms"] / c.n;
    const graphPerAsset = m["(c) AssetGraph.fromAssets + toposort ms"] / c.n;
    notes.push(
      `${c.name}: CLI load + lineage ${(loadPerAsset * 1000).toFixed(1)} µs/asset (Dagster's load: 30,000 µs/asset, ${Math.round(30 / loadPerAsset)}× that); ` +
        `graph build ${(graphPerAsset * 1000).toFixed(2)} µs/asset (Dagster's before its fix: 1,300 µs/asset, ${Math.round(1.3 / graphPerAsset)}× that)`,
    );
  }
  return notes;
}

/**
 * Writes `spec` as a real project (a .mjs file importing "strata" through a node_modules/strata
 * symlink to this repo, plus spec.json) in a temp dir and runs the CLI on it twice.
 */
async function measureCli(spec) {
  const dir = mkdtempSync(join(tmpdir(), "strata-bench-lineage-"));
  try {
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "strata"), "dir");
    writeFileSync(join(dir, "spec.json"), JSON.stringify(spec));
    const lib = pathToFileURL(join(HERE, "lib", "synthetic-project.mjs")).href;
    writeFileSync(
      join(dir, "strata.config.mjs"),
      [
        "// Generated by bench/lineage.bench.mjs: a synthetic project built from spec.json.",
        'import { readFileSync } from "node:fs";',
        'import * as strata from "strata";',
        `import { buildProject } from ${JSON.stringify(lib)};`,
        'const spec = JSON.parse(readFileSync(new URL("./spec.json", import.meta.url), "utf8"));',
        "export default buildProject(strata, spec);",
        "",
      ].join("\n"),
    );
    const cold = await runCli(dir, spec);
    const warm = await runCli(dir, spec);
    return { cold, warm };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `strata --project <dir>/strata.config.mjs lineage --format json > out.json`, checked. */
async function runCli(dir, spec) {
  const out = join(dir, "out.json");
  const timeFile = join(dir, "time.txt");
  const args = [CLI, "--project", join(dir, "strata.config.mjs"), "lineage", "--format", "json"];
  const useTime = existsSync("/usr/bin/time");
  const command = useTime ? "/usr/bin/time" : process.execPath;
  const argv = useTime ? ["-f", "%M", "-o", timeFile, process.execPath, ...args] : args;
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.STRATA_PROJECT;
  const fd = openSync(out, "w");
  const start = performance.now();
  const code = await new Promise((resolveExit, reject) => {
    const child = spawn(command, argv, { cwd: dir, env, stdio: ["ignore", fd, "inherit"] });
    child.on("error", reject);
    child.on("close", (c) => resolveExit(c));
  });
  const ms = performance.now() - start;
  closeSync(fd);
  if (code !== 0) throw new Error(`strata lineage exited with ${code}`);
  const lineage = JSON.parse(readFileSync(out, "utf8"));
  if (lineage.assets.length !== spec.n || lineage.edges.length !== edgeCount(spec)) {
    throw new Error(
      `strata lineage printed ${lineage.assets.length} assets and ${lineage.edges.length} edges; expected ${spec.n} and ${edgeCount(spec)}`,
    );
  }
  const rssKiB = useTime
    ? Number(readFileSync(timeFile, "utf8").trim().split("\n").pop())
    : Number.NaN;
  return { ms, rssKiB, bytes: statSync(out).size };
}
