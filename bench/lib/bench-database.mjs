// Throwaway databases for benches: each bench creates its own database on the Postgres server
// (BENCH_DATABASE_URL, else DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres) or
// its own embedded PGlite data directory, and drops it at the end.

import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** The server benches create their databases on. */
export const ADMIN_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ||
  process.env.DATABASE_URL ||
  "postgres://postgres@127.0.0.1:5432/postgres";

/** `create database strata_bench_<random>`; returns its URL and a `drop()` that removes it. */
export async function createBenchDatabase(prefix = "strata_bench") {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => adminQuery(`drop database if exists ${name} with (force)`),
  };
}

/** A fresh temp dir for an embedded database (or Arrow files); `remove()` deletes it. */
export function createTempDir(prefix = "strata-bench-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs one statement on the admin connection. */
export async function adminQuery(text, values) {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}
