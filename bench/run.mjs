#!/usr/bin/env node
// The benchmark harness: `npm run bench [-- NAME...]` builds, then runs each bench/NAME.bench.mjs
// (all of them by default) in its own `node --expose-gc` process, reads the JSON result on the
// last line of its stdout, prints a report and writes bench/results/NAME.json. The contract is in
// bench/README.md. Exit code: 0 when every bench ran and met its goals, 1 otherwise.

import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runNodeChild } from "./lib/bench-child.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const SUFFIX = ".bench.mjs";

const available = readdirSync(HERE)
  .filter((f) => f.endsWith(SUFFIX))
  .map((f) => f.slice(0, -SUFFIX.length))
  .sort();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(
    `unknown bench ${unknown.map((u) => `"${u}"`).join(", ")}; available: ${available.join(", ")}`,
  );
  process.exit(2);
}
const names = wanted.length > 0 ? wanted : available;

const machine = machineInfo();
console.log(
  `machine: ${machine.cpu} × ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}; node ${machine.node}; commit ${machine.commit}`,
);

let failed = false;
for (const name of names) {
  console.log(`\n== ${name} ==`);
  const start = Date.now();
  let result;
  try {
    result = await runNodeChild(join(HERE, `${name}${SUFFIX}`));
  } catch (error) {
    console.error(`bench "${name}" failed: ${error instanceof Error ? error.message : error}`);
    failed = true;
    continue;
  }
  const wallMs = Date.now() - start;
  const cases = (result.cases ?? []).map((c) => ({
    ...c,
    goals: (c.goals ?? []).map((g) => ({ ...g, pass: g.value <= g.limit })),
  }));
  printCases(cases);
  printGoals(cases);
  for (const note of result.notes ?? []) console.log(`  note: ${note}`);
  console.log(
    `  bench wall time ${(wallMs / 1000).toFixed(1)} s, bench process peak RSS ${mib(result.maxRssKiB)} MiB`,
  );
  if (cases.some((c) => c.goals.some((g) => !g.pass))) failed = true;
  const resultsDir = join(HERE, "results");
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${name}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ ...result, name, cases, machine, date: new Date().toISOString(), wallMs }, null, 2)}\n`,
  );
  console.log(`  written to ${file}`);
}
process.exitCode = failed ? 1 : 0;

function machineInfo() {
  const cpuList = cpus();
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      cwd: HERE,
      encoding: "utf8",
    }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: HERE, encoding: "utf8" });
    if (dirty.trim() !== "") commit += "+dirty";
  } catch {}
  return {
    cpu: cpuList[0]?.model.trim() ?? "unknown",
    cores: cpuList.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    commit,
  };
}

/** One row per metric, one column per case. */
function printCases(cases) {
  if (cases.length === 0) return;
  const metrics = [...new Set(cases.flatMap((c) => Object.keys(c.metrics ?? {})))];
  const width = Math.max(...metrics.map((m) => m.length));
  const columns = cases.map((c) => Math.max(12, c.name.length));
  console.log(
    `  ${"".padEnd(width)}  ${cases.map((c, i) => c.name.padStart(columns[i])).join("  ")}`,
  );
  for (const metric of metrics) {
    const cells = cases.map((c, i) => formatNumber(c.metrics?.[metric]).padStart(columns[i]));
    console.log(`  ${metric.padEnd(width)}  ${cells.join("  ")}`);
  }
}

function printGoals(cases) {
  for (const c of cases) {
    for (const g of c.goals) {
      const verdict = g.pass ? "PASS" : "FAIL";
      console.log(
        `  ${verdict}  ${c.name}: ${g.name}: ${formatNumber(g.value)} ${g.unit} (goal < ${formatNumber(g.limit)} ${g.unit}, ${((g.value / g.limit) * 100).toFixed(0)}% of it)`,
      );
    }
  }
}

function formatNumber(value) {
  if (typeof value !== "number" || Number.isNaN(value)) return "-";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  return value.toLocaleString("en-US", { maximumFractionDigits: value < 10 ? 2 : 1 });
}

function mib(kib) {
  return typeof kib === "number" ? formatNumber(kib / 1024) : "-";
}
