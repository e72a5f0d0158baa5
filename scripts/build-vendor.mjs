#!/usr/bin/env node
// Run by `npm run build` after tsc: bundles kysely and apache-arrow each into one file in
// dist/vendor/ and points the compiled code's imports of them there.
//
// Both packages ship as hundreds of small ES modules (kysely 263, apache-arrow 146), and every
// strata command loads both: the project file imports strata, which exports the store and the
// Arrow values. Node reads, compiles and links each module on its own, which cost 140 and 120 ms
// of every command; one file each loads in a fraction of that. The type declarations keep
// importing the packages themselves, which stay dependencies.

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DIST = join(ROOT, "dist");
const VENDOR = join(DIST, "vendor");
const PACKAGES = ["kysely", "apache-arrow"];

for (const name of PACKAGES) {
  await build({
    stdin: { contents: `export * from "${name}";`, resolveDir: ROOT, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outfile: join(VENDOR, `${name}.js`),
    legalComments: "inline",
    logLevel: "warning",
  });
}

// `from "kysely"`, `import("kysely")`: the specifier in quotes after `from` or `import(`
const SPECIFIER = new RegExp(`(\\bfrom\\s*|\\bimport\\(\\s*)(["'])(${PACKAGES.join("|")})\\2`, "g");
let importers = 0;
for (const file of compiledFiles(DIST)) {
  const code = readFileSync(file, "utf8");
  const next = code.replace(SPECIFIER, (_match, before, quote, name) => {
    let path = relative(dirname(file), join(VENDOR, `${name}.js`));
    if (!path.startsWith(".")) path = `./${path}`;
    return `${before}${quote}${path}${quote}`;
  });
  if (next !== code) writeFileSync(file, next);
  if (next.includes("/vendor/")) importers += 1;
}
// the compiled code imports both packages: none found means the pattern no longer matches
if (importers === 0) throw new Error("build-vendor: no import of kysely or apache-arrow in dist/");

/** The compiled JavaScript files under `dir`, dist/vendor/ left out. */
function* compiledFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (path !== VENDOR) yield* compiledFiles(path);
    } else if (entry.name.endsWith(".js")) {
      yield path;
    }
  }
}
