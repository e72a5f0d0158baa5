import { randomBytes } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { packDirectory, unpackDirectory } from "./data-dir-archive.js";
import { type MigrationFile, migrate, readMigrations } from "./migrator.js";
import { openEmbeddedStore } from "./store.js";

// A new embedded database costs seconds of CPU to create: PGlite runs initdb, then the
// migrations run. `npm run build` does that once and packs the migrated data directory here (the
// embedded image); a new project's database starts as a copy of it, and the migrator then applies
// whatever migrations the image lacks.

/** Where `npm run build` writes the embedded image (`dist/embedded-image/`). */
export const EMBEDDED_IMAGE_DIR = fileURLToPath(
  new URL("../../dist/embedded-image/", import.meta.url),
);

const ARCHIVE = "data.tar.gz";
const MANIFEST = "manifest.json";
/** Bumped when the image's layout or the way strata sets a database up changes. */
const FORMAT = 1;

/** What an image holds: the PGlite build that wrote it and the migrations applied to it. */
export interface EmbeddedImageManifest {
  readonly format: number;
  readonly pglite: string;
  readonly migrations: ReadonlyArray<{ readonly name: string; readonly checksum: string }>;
}

/** The version of the installed PGlite: an image is only good for the build that wrote it. */
export function pgliteVersion(): string {
  const main = createRequire(import.meta.url).resolve("@electric-sql/pglite");
  const packageJson = join(dirname(main), "..", "package.json");
  return (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
}

/** The manifest of the image in `imageDir`, or undefined when there is none. */
export function readImageManifest(
  imageDir = EMBEDDED_IMAGE_DIR,
): EmbeddedImageManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(imageDir, MANIFEST), "utf8")) as EmbeddedImageManifest;
  } catch {
    return undefined;
  }
}

/**
 * Whether a database started from the image with `manifest` is the one this strata would make:
 * the same PGlite build, and the image's migrations are the first of `files`, unchanged (the
 * migrator applies the rest). An image built before a migration was edited, or from another
 * branch's migrations, is not used.
 */
export function imageMatches(
  manifest: EmbeddedImageManifest,
  files: ReadonlyArray<MigrationFile>,
): boolean {
  if (manifest.format !== FORMAT || manifest.pglite !== pgliteVersion()) return false;
  if (manifest.migrations.length > files.length) return false;
  return manifest.migrations.every(
    (m, i) => files[i]!.name === m.name && files[i]!.checksum === m.checksum,
  );
}

/**
 * Creates the embedded database at `dataDir` as a copy of the image, when `dataDir` is new (or an
 * empty folder) and the image matches `files`; returns whether it did. The copy is unpacked
 * beside `dataDir` and renamed into place, so a crash leaves no half-made database. Call it with
 * the database's lock held.
 *
 * @example
 * if (restoreEmbeddedImage(dataDir, await readMigrations())) console.log("from the image");
 */
export function restoreEmbeddedImage(
  dataDir: string,
  files: ReadonlyArray<MigrationFile>,
  imageDir = EMBEDDED_IMAGE_DIR,
): boolean {
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) return false;
  const manifest = readImageManifest(imageDir);
  if (manifest === undefined || !imageMatches(manifest, files)) return false;
  const aside = `${dataDir}.restoring-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    unpackDirectory(readFileSync(join(imageDir, ARCHIVE)), aside);
    if (existsSync(dataDir)) rmdirSync(dataDir);
    renameSync(aside, dataDir);
    return true;
  } catch {
    // An unreadable image or a full disk: PGlite creates the database the slow way instead.
    rmSync(aside, { recursive: true, force: true });
    return false;
  }
}

/**
 * Whether the image in `imageDir` is the one {@link buildEmbeddedImage} would build now.
 *
 * @example
 * if (!embeddedImageIsCurrent()) await buildEmbeddedImage();
 */
export async function embeddedImageIsCurrent(
  imageDir = EMBEDDED_IMAGE_DIR,
  files?: ReadonlyArray<MigrationFile>,
): Promise<boolean> {
  const all = files ?? (await readMigrations());
  const manifest = readImageManifest(imageDir);
  return (
    manifest !== undefined &&
    existsSync(join(imageDir, ARCHIVE)) &&
    imageMatches(manifest, all) &&
    manifest.migrations.length === all.length
  );
}

/**
 * Creates an embedded database, applies `files` (default: strata's migrations), closes it
 * cleanly and packs its data directory into `imageDir` with its manifest.
 *
 * @example
 * await buildEmbeddedImage(); // what `npm run build` runs
 */
export async function buildEmbeddedImage(
  imageDir = EMBEDDED_IMAGE_DIR,
  files?: ReadonlyArray<MigrationFile>,
): Promise<EmbeddedImageManifest> {
  const all = files ?? (await readMigrations());
  const work = mkdtempSync(join(dirname(imageDir.replace(/[\\/]$/, "")), ".embedded-image-"));
  try {
    const dataDir = join(work, "db");
    const store = await openEmbeddedStore(dataDir);
    try {
      await migrate(store.db, all);
    } finally {
      await store.close();
    }
    const manifest: EmbeddedImageManifest = {
      format: FORMAT,
      pglite: pgliteVersion(),
      migrations: all.map((m) => ({ name: m.name, checksum: m.checksum })),
    };
    // Written aside and renamed into place: a concurrent reader sees the old image or the new.
    const next = join(work, "image");
    mkdirSync(next);
    const archive = packDirectory(dataDir);
    writeFileSync(join(next, ARCHIVE), archive);
    writeFileSync(join(next, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    rmSync(imageDir, { recursive: true, force: true });
    renameSync(next, imageDir);
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
