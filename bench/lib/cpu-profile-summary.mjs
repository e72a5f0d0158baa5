#!/usr/bin/env node
// Summarizes V8 CPU profiles (`node --cpu-prof`): self time by function and by package or file,
// and inclusive time of strata's own functions, so a bench's hot spots can be read without
// DevTools. Usage: node bench/lib/cpu-profile-summary.mjs FILE.cpuprofile... [--top N]

import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const topIndex = args.indexOf("--top");
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25;
const files = args.filter((a, i) => !a.startsWith("--") && (topIndex < 0 || i !== topIndex + 1));

for (const file of files) summarize(file);

function summarize(file) {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // time per sample: the delta that follows it
  const selfUs = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
    total += dt;
  });
  const byFunction = new Map();
  const byArea = new Map();
  const inclusive = new Map();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = nodes.get(id);
    const name = label(node.callFrame);
    if (node.callFrame.functionName === "(idle)") idle += us;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const area = areaOf(node.callFrame);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
    // inclusive time of each distinct function on the stack (counted once per sample stack)
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const frame = nodes.get(at).callFrame;
      const key = label(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
  }
  const busy = total - idle;
  const pct = (us) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
  console.log(`\n${file}`);
  console.log(`  sampled ${ms(total)}, idle ${ms(idle)}, busy ${ms(busy)} (percentages of busy)`);
  console.log("  self time by area:");
  for (const [area, us] of sorted(byArea).slice(0, top))
    console.log(`    ${pct(us)} ${ms(us)}  ${area}`);
  console.log("  self time by function:");
  for (const [name, us] of sorted(byFunction).slice(0, top))
    console.log(`    ${pct(us)} ${ms(us)}  ${name}`);
  console.log("  inclusive time, strata's own functions (dist/):");
  const own = sorted(inclusive).filter(([name]) => name.includes(" dist/"));
  for (const [name, us] of own.slice(0, top)) console.log(`    ${pct(us)} ${ms(us)}  ${name}`);
}

function sorted(map) {
  return [...map].sort((a, b) => b[1] - a[1]);
}

function label(frame) {
  const where = frame.url ? shorten(frame.url) : "";
  return `${frame.functionName || "(anonymous)"}${where ? ` ${where}:${frame.lineNumber + 1}` : ""}`;
}

function shorten(url) {
  const clean = url.replace(/^file:\/\//, "");
  const nm = clean.lastIndexOf("node_modules/");
  if (nm >= 0) return clean.slice(nm + "node_modules/".length);
  const dist = clean.indexOf("/dist/");
  if (dist >= 0) return clean.slice(dist + 1);
  const bench = clean.indexOf("/bench/");
  if (bench >= 0) return clean.slice(bench + 1);
  return clean;
}

function areaOf(frame) {
  const name = frame.functionName;
  if (!frame.url) return name.startsWith("(") ? name : "(native / V8 builtins)";
  const url = shorten(frame.url);
  if (url.startsWith("node:"))
    return `node core: ${url.replace(/^node:internal\//, "").split("/")[0]}`;
  const nm = frame.url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const parts = url.split("/");
    return `package: ${parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return url;
}
