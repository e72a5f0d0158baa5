#!/usr/bin/env node
// Run by `npm run build` after tsc: packs a migrated embedded database into dist/embedded-image/
// (see src/store/embedded-image.ts), so that the first command in a new project copies it
// instead of creating a database from scratch. Skipped when the image is current (same PGlite,
// same migrations).

import { performance } from "node:perf_hooks";

const { buildEmbeddedImage, embeddedImageIsCurrent } = await import(
  "../dist/store/embedded-image.js"
);
if (await embeddedImageIsCurrent()) process.exit(0);
const start = performance.now();
const manifest = await buildEmbeddedImage();
console.log(
  `embedded database image: ${manifest.migrations.length} migrations, PGlite ${manifest.pglite}, in dist/embedded-image/ (${((performance.now() - start) / 1000).toFixed(1)} s)`,
);
