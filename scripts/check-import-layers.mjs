#!/usr/bin/env node
// Checks that imports between the folders of src/ flow one way (DESIGN.md, "Layout"):
//
//   cli → ui, automation, workers → materialize → inference, values → lineage → assets
//                                   (a folder may import any folder to its right)
//   store, sim, util: leaves that anyone may import; they import only leaves below them
//                     (store and sim may use util; util uses nothing of ours but errors)
//   src/errors.ts: imported by all, imports nothing of ours
//   src/index.ts:  the public API; imports anything, imported by nothing
//
// and that assets/ and lineage/ import no I/O module (they are pure). It also fails on any
// import cycle between folders. No dependencies: it scans the source text, so it runs in well
// under a second. Usage: node scripts/check-import-layers.mjs [repo root]; exit 1 lists each
// offending import as file:line.

import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** What each layer may import (besides itself). */
const LEAVES = ["store", "sim", "util", "errors"];
const ALLOWED = {
  errors: [],
  util: ["errors"],
  store: ["util", "errors"],
  sim: ["util", "errors"],
  assets: ["util", "errors"],
  lineage: ["assets", "util", "errors"],
  values: ["lineage", "assets", ...LEAVES],
  inference: ["lineage", "assets", ...LEAVES],
  materialize: ["inference", "values", "lineage", "assets", ...LEAVES],
  workers: ["materialize", "inference", "values", "lineage", "assets", ...LEAVES],
  automation: ["materialize", "inference", "values", "lineage", "assets", ...LEAVES],
  ui: ["materialize", "inference", "values", "lineage", "assets", ...LEAVES],
  cli: [
    "ui",
    "automation",
    "workers",
    "materialize",
    "inference",
    "values",
    "lineage",
    "assets",
    ...LEAVES,
  ],
  index: [
    "cli",
    "ui",
    "automation",
    "workers",
    "materialize",
    "inference",
    "values",
    "lineage",
    "assets",
    ...LEAVES,
  ],
};

/** Layers that do no I/O, and the modules that would make them do it. */
const PURE_LAYERS = new Set(["assets", "lineage"]);
const IO_MODULES = [
  "fs",
  "fs/promises",
  "child_process",
  "net",
  "http",
  "https",
  "http2",
  "tls",
  "dgram",
  "pg",
  "@electric-sql/pglite",
];

/** The package's own name: importing it from src/ would import src/index.ts. */
const PACKAGE_NAME = "strata";

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), ".."));
const srcDir = join(root, "src");

const problems = [];
/** Folder-level import edges: "from→to" → the first import seen that makes it. */
const edges = new Map();

const files = listTypeScript(srcDir);
for (const file of files) {
  const fromLayer = layerOf(file);
  const where = relative(root, file).split(sep).join("/");
  if (fromLayer === undefined) {
    problems.push(
      `${where}:1: is in no known layer; put it in a folder of src/ or add its folder to scripts/check-import-layers.mjs`,
    );
    continue;
  }
  const imports = findImports(readFileSync(file, "utf8")).sort((a, b) => a.line - b.line);
  for (const imp of imports) {
    const at = `${where}:${imp.line}`;
    if (imp.specifier.startsWith(".")) {
      const target = resolve(dirname(file), imp.specifier);
      if (!target.startsWith(srcDir + sep)) continue; // outside src/: not a layer
      const toLayer = layerOf(target.replace(/\.(m?js)$/, ".ts"));
      if (toLayer === undefined || toLayer === fromLayer) continue;
      const key = `${fromLayer}→${toLayer}`;
      if (!edges.has(key)) edges.set(key, `${at} ("${imp.specifier}")`);
      if (toLayer === "index") {
        problems.push(`${at}: imports src/index.ts ("${imp.specifier}"); nothing may import it`);
      } else if (!ALLOWED[fromLayer].includes(toLayer)) {
        problems.push(
          `${at}: ${describe(fromLayer)} may not import ${describe(toLayer)} ("${imp.specifier}"); ${rule(fromLayer)}`,
        );
      }
      continue;
    }
    const bare = imp.specifier.replace(/^node:/, "");
    if (bare === PACKAGE_NAME || bare.startsWith(`${PACKAGE_NAME}/`)) {
      problems.push(
        `${at}: imports the package itself ("${imp.specifier}"), that is src/index.ts; import the module directly`,
      );
    } else if (
      PURE_LAYERS.has(fromLayer) &&
      !imp.typeOnly &&
      IO_MODULES.some((m) => bare === m || bare.startsWith(`${m}/`))
    ) {
      problems.push(
        `${at}: ${fromLayer}/ does no I/O but imports "${imp.specifier}"; move the I/O to materialize/ or store/`,
      );
    }
  }
}

for (const cycle of folderCycles(edges)) {
  const steps = cycle.map((from, i) => {
    const to = cycle[(i + 1) % cycle.length];
    return `  ${from} → ${to} at ${edges.get(`${from}→${to}`)}`;
  });
  problems.push(
    `import cycle between folders ${[...cycle, cycle[0]].join(" → ")}:\n${steps.join("\n")}`,
  );
}

if (problems.length > 0) {
  console.error(`import layers: ${problems.length} problem(s)`);
  for (const p of problems) console.error(p);
  console.error(
    "the layering is cli → ui, automation, workers → materialize → inference, values → lineage → assets, with store, sim and util as leaves; see DESIGN.md, Layout",
  );
  process.exit(1);
}
console.log(`import layers: ${files.length} files ok`);

// ---------------------------------------------------------------------------------------------

function listTypeScript(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listTypeScript(path));
    else if (/\.(c|m)?tsx?$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The layer of a file under src/: its top folder, or errors/index for those two files. */
function layerOf(file) {
  const parts = relative(srcDir, file).split(sep);
  if (parts.length === 1) {
    if (parts[0] === "errors.ts") return "errors";
    if (parts[0] === "index.ts") return "index";
    return undefined;
  }
  return Object.hasOwn(ALLOWED, parts[0]) && parts[0] !== "errors" && parts[0] !== "index"
    ? parts[0]
    : undefined;
}

function describe(layer) {
  return layer === "errors" || layer === "index" ? `src/${layer}.ts` : `${layer}/`;
}

function rule(layer) {
  const allowed = ALLOWED[layer];
  return allowed.length === 0
    ? `${describe(layer)} imports nothing of strata's`
    : `${describe(layer)} may import ${allowed.map(describe).join(", ")}`;
}

/**
 * The module specifiers a TypeScript file imports, with their line and whether the import is
 * `import type`/`export type` (erased at runtime). Static imports are recognised only at the
 * start of a line, as statements, after comments are blanked out, so examples in JSDoc and
 * commented-out code do not count; dynamic `import("...")` is recognised anywhere in code.
 */
function findImports(text) {
  const { code, inString } = blankComments(text);
  const found = [];
  const lineAt = (index) => {
    let line = 1;
    for (let i = 0; i < index; i++) if (code.charCodeAt(i) === 10) line++;
    return line;
  };
  const named = String.raw`\{[^}]*\}`;
  const ident = String.raw`[A-Za-z_$][\w$]*`;
  const clause = String.raw`(?:\*(?:\s+as\s+${ident})?|${named}|${ident}(?:\s*,\s*(?:${named}|\*\s+as\s+${ident}))?)`;
  const staticImport = new RegExp(
    String.raw`^[ \t]*(?:import|export)\s+(type\s+)?${clause}\s*from\s*(["'])([^"'\n]+)\2`,
    "gm",
  );
  for (const m of code.matchAll(staticImport)) {
    found.push({ specifier: m[3], typeOnly: m[1] !== undefined, line: lineAt(m.index) });
  }
  for (const m of code.matchAll(/^[ \t]*import\s*(["'])([^"'\n]+)\1/gm)) {
    found.push({ specifier: m[2], typeOnly: false, line: lineAt(m.index) });
  }
  for (const m of code.matchAll(/(?<![\w$.])import\s*\(\s*(["'])([^"'\n]+)\1/g)) {
    if (inString[m.index]) continue;
    found.push({ specifier: m[2], typeOnly: false, line: lineAt(m.index) });
  }
  return found;
}

/**
 * The text with comments replaced by spaces (newlines kept, so line numbers hold) and a mask of
 * which characters are inside string or template literals. Regex literals are recognised by the
 * usual rule (a `/` where an expression may start), so a quote inside one does not derail it.
 */
function blankComments(text) {
  const out = text.split("");
  const inString = new Uint8Array(text.length);
  const templateDepth = []; // brace depth at each open `${`
  let braces = 0;
  let lastSignificant = "";
  let i = 0;
  const blank = (from, to) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  const skipQuoted = (quote) => {
    // i is at the opening quote; returns after the closing one (or at a `${` for templates)
    inString[i] = 1;
    i++;
    while (i < text.length) {
      const c = text[i];
      inString[i] = 1;
      if (c === "\\") {
        inString[i + 1] = 1;
        i += 2;
        continue;
      }
      if (quote === "`" && c === "$" && text[i + 1] === "{") {
        inString[i + 1] = 1;
        i += 2;
        templateDepth.push(braces);
        return;
      }
      i++;
      if (c === quote || (quote !== "`" && c === "\n")) return;
    }
  };
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === "/" && next === "/") {
      const end = text.indexOf("\n", i);
      const stop = end === -1 ? text.length : end;
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === "/" && next === "*") {
      const end = text.indexOf("*/", i + 2);
      const stop = end === -1 ? text.length : end + 2;
      blank(i, stop);
      i = stop;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      skipQuoted(c);
      lastSignificant = "a";
      continue;
    }
    if (c === "/" && (lastSignificant === "" || /[(,=:[!&|?{};+\-*%<>~^]/.test(lastSignificant))) {
      // a regex literal
      let inClass = false;
      i++;
      while (i < text.length && text[i] !== "\n") {
        const r = text[i];
        if (r === "\\") i++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        i++;
      }
      i++;
      lastSignificant = "a";
      continue;
    }
    if (c === "{") braces++;
    if (c === "}") {
      if (templateDepth.length > 0 && templateDepth[templateDepth.length - 1] === braces) {
        templateDepth.pop();
        skipQuoted("`"); // back in the template: this `}` ends its `${ }`
        lastSignificant = "a";
        continue;
      }
      braces--;
    }
    if (!/\s/.test(c)) {
      // keywords after which a `/` starts a regex behave like operators
      if (/[\w$]/.test(c)) {
        let end = i;
        while (end < text.length && /[\w$]/.test(text[end])) end++;
        const word = text.slice(i, end);
        lastSignificant = /^(return|typeof|case|do|else|in|of|void|yield|await)$/.test(word)
          ? "("
          : "a";
        i = end;
        continue;
      }
      lastSignificant = c;
    }
    i++;
  }
  return { code: out.join(""), inString };
}

/** Cycles in the folder graph: one per strongly connected component of two or more folders. */
function folderCycles(edgeMap) {
  const graph = new Map();
  for (const key of edgeMap.keys()) {
    const [from, to] = key.split("→");
    if (!graph.has(from)) graph.set(from, []);
    if (!graph.has(to)) graph.set(to, []);
    graph.get(from).push(to);
  }
  // Tarjan's algorithm
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(new Set(component));
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  // within each component, report one concrete cycle through its first folder
  return components.map((component) => {
    const start = [...component].sort()[0];
    const path = shortestCycle(graph, component, start);
    return path;
  });
}

function shortestCycle(graph, component, start) {
  const previous = new Map();
  const queue = [start];
  const seen = new Set([start]);
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0]));
        return path;
      }
      if (!seen.has(w)) {
        seen.add(w);
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}
