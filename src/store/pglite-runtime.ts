import { readFile } from "node:fs/promises";
import type { PGliteOptions } from "@electric-sql/pglite";

// Node has WebAssembly; TypeScript declares it only in the DOM library.
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<unknown> };

let runtime: Promise<Partial<PGliteOptions>> | undefined;
let initdb: Promise<Partial<PGliteOptions>> | undefined;

/**
 * PGlite's WebAssembly modules and file-system bundle, compiled once per process.
 *
 * PGlite compiles its Postgres build on every `create()` unless handed the compiled modules;
 * reusing them makes opening a second database in one process (tests, `strata` commands that
 * open and close the store) several times faster. `initdb: false` leaves out the module that
 * only creating a database runs (PGlite loads it itself should it need it after all).
 *
 * @example
 * const pglite = await PGlite.create(dataDir, { ...(await pgliteRuntime()) });
 */
export async function pgliteRuntime(
  options: { readonly initdb?: boolean } = {},
): Promise<Partial<PGliteOptions>> {
  runtime ??= load(async (dist) => {
    const [pglite, bundle] = await Promise.all([
      readFile(new URL("pglite.wasm", dist)),
      readFile(new URL("pglite.data", dist)),
    ]);
    return { pgliteWasmModule: await WebAssembly.compile(pglite), fsBundle: bundleOf(bundle) };
  }, "runtime");
  if (options.initdb === false) return runtime;
  initdb ??= load(
    async (dist) => ({
      initdbWasmModule: await WebAssembly.compile(await readFile(new URL("initdb.wasm", dist))),
    }),
    "initdb",
  );
  const [modules, initdbModule] = await Promise.all([runtime, initdb]);
  return { ...modules, ...initdbModule };
}

/**
 * The file-system bundle as PGlite reads it: it only calls `arrayBuffer()`. A `Blob` would copy
 * the 6 MB in and read them back in 64 KB chunks, 90 ms of every open; this hands PGlite a copy
 * of the bytes read once (it may keep what it is given, and a process opens many databases).
 */
function bundleOf(bytes: Uint8Array): Blob {
  const arrayBuffer = () =>
    Promise.resolve(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
    );
  return { arrayBuffer } as unknown as Blob;
}

function load(
  compile: (dist: URL) => Promise<Record<string, unknown>>,
  which: "runtime" | "initdb",
): Promise<Partial<PGliteOptions>> {
  return (async () => {
    const dist = new URL(".", import.meta.resolve("@electric-sql/pglite"));
    return (await compile(dist)) as Partial<PGliteOptions>;
  })().catch((error: unknown) => {
    // Fall back to PGlite's own loading; forget the failure so a later call can try again.
    if (which === "runtime") runtime = undefined;
    else initdb = undefined;
    void error;
    return {};
  });
}
