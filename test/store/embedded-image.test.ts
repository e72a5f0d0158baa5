import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildEmbeddedImage,
  type EmbeddedImageManifest,
  embeddedImageIsCurrent,
} from "../../src/store/embedded-image.js";
import { migrate, readMigrations } from "../../src/store/migrator.js";
import { openEmbeddedStore, type Store } from "../../src/store/store.js";
import { createTempDir } from "../helpers/temp-dir.js";

// A new embedded database starts as a copy of a migrated image when one matches strata's
// migrations and PGlite; the migrator then applies what the image lacks. Each test opens a new
// data directory from one of the images built here (into temp dirs, not dist/).

let temp: { path: string; remove(): Promise<void> };
/** An image with every migration applied, and one with none. */
let migrated: string;
let empty: string;

beforeAll(async () => {
  temp = await createTempDir();
  migrated = join(temp.path, "migrated");
  empty = join(temp.path, "empty");
  await buildEmbeddedImage(migrated);
  await buildEmbeddedImage(empty, []);
}, 240_000);

afterAll(() => temp.remove());

let opened = 0;
/** Opens a new embedded database from `imageDir`, migrates it and returns what was applied. */
async function openNew(imageDir: string, dataDir?: string) {
  const dir = dataDir ?? join(temp.path, `db-${opened++}`);
  const before = new Date(Date.now() - 1_000);
  const store = await openEmbeddedStore(dir, { fromImage: true, imageDir });
  try {
    const { applied } = await migrate(store.db);
    return { applied, before, appliedAt: await appliedAt(store) };
  } finally {
    await store.close();
  }
}

async function appliedAt(store: Store): Promise<Date[]> {
  const rows = await sql<{ applied_at: Date }>`
    select applied_at from strata.migrations order by name`.execute(store.db);
  return rows.rows.map((r) => r.applied_at);
}

/** A copy of the migrated image whose manifest is changed by `edit`. */
function editedImage(name: string, edit: (m: EmbeddedImageManifest) => EmbeddedImageManifest) {
  const dir = join(temp.path, name);
  cpSync(migrated, dir, { recursive: true });
  const file = join(dir, "manifest.json");
  const manifest = JSON.parse(readFileSync(file, "utf8")) as EmbeddedImageManifest;
  writeFileSync(file, JSON.stringify(edit(manifest)));
  return dir;
}

describe("a new embedded database from the image", () => {
  it("starts migrated: the migrator has nothing left to apply, and applied_at is its creation", async () => {
    const { applied, before, appliedAt } = await openNew(migrated);
    expect(applied).toEqual([]);
    expect(appliedAt).toHaveLength((await readMigrations()).length);
    for (const at of appliedAt) expect(at.getTime()).toBeGreaterThanOrEqual(before.getTime());
  });

  it("gets the migrations the image lacks from the migrator", async () => {
    const { applied } = await openNew(empty);
    expect(applied).toEqual((await readMigrations()).map((m) => m.name));
  });

  it("starts from the image in an empty folder too", async () => {
    const dir = join(temp.path, "empty-folder");
    mkdirSync(dir);
    expect((await openNew(migrated, dir)).applied).toEqual([]);
  });

  it("is current for the migrations it was built from, and not for one more", async () => {
    const files = await readMigrations();
    expect(await embeddedImageIsCurrent(migrated, files)).toBe(true);
    const extra = { name: "9999_extra.sql", sql: "select 1", checksum: "x" };
    expect(await embeddedImageIsCurrent(migrated, [...files, extra])).toBe(false);
    expect(await embeddedImageIsCurrent(empty, files)).toBe(false);
  });

  // An image is used only when embeddedImageIsCurrent says so; one of these kinds of stale
  // image also goes through a real open, to show the open asks it (each open of a stale image
  // creates a database with initdb, seconds of CPU).
  it.each([
    [
      "a migration edited since the image was built",
      "edited",
      (m: EmbeddedImageManifest) => ({
        ...m,
        migrations: m.migrations.map((x) => ({ ...x, checksum: `${x.checksum.slice(1)}0` })),
      }),
    ],
    [
      "another PGlite version",
      "other-pglite",
      (m: EmbeddedImageManifest) => ({
        ...m,
        pglite: "0.0.1",
      }),
    ],
    [
      "a migration strata does not have",
      "unknown-migration",
      (m: EmbeddedImageManifest) => ({
        ...m,
        migrations: [{ name: "0000_other_branch.sql", checksum: "x" }, ...m.migrations],
      }),
    ],
  ])("is not current with %s", async (_, name, edit) => {
    expect(await embeddedImageIsCurrent(editedImage(name, edit), await readMigrations())).toBe(
      false,
    );
  });

  it("is not used when it is not current: PGlite creates the database", async () => {
    const stale = editedImage("stale", (m) => ({ ...m, pglite: "0.0.1" }));
    // had the image been used, the migrator would find nothing to apply
    const { applied } = await openNew(stale);
    expect(applied).toEqual((await readMigrations()).map((m) => m.name));
  }, 120_000);

  it("leaves an existing database alone", async () => {
    const dir = join(temp.path, "existing");
    const first = await openNew(empty, dir);
    expect(first.applied).toHaveLength((await readMigrations()).length);
    const again = await openNew(migrated, dir);
    expect(again.applied).toEqual([]);
    // the first open's migrations stayed as they were: nothing was copied over the database
    expect(again.appliedAt).toEqual(first.appliedAt);
  }, 120_000);
});
