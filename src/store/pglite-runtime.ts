import { readFile } from "node:fs/promises";
import type { PGliteOptions } from "@electric-sql/pglite";

// Node has WebAssembly; TypeScript declares it only in the DOM library.
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<unknown> };

let runtime: Promise<Partial<PGliteOptions>> | undefined;

/**
 * PGlite's WebAssembly modules and file-system bundle, compiled once per process.
 *
 * PGlite compiles its Postgres build on every `create()` unless handed the compiled modules;
 * reusing them makes opening a second database in one process (tests, `strata` commands that
 * open and close the store) several times faster.
 *
 * @example
 * const pglite = await PGlite.create(dataDir, { ...(await pgliteRuntime()) });
 */
export function pgliteRuntime(): Promise<Partial<PGliteOptions>> {
  runtime ??= (async () => {
    const dist = new URL(".", import.meta.resolve("@electric-sql/pglite"));
    const [pglite, initdb, bundle] = await Promise.all([
      readFile(new URL("pglite.wasm", dist)),
      readFile(new URL("initdb.wasm", dist)),
      readFile(new URL("pglite.data", dist)),
    ]);
    const [pgliteWasmModule, initdbWasmModule] = await Promise.all([
      WebAssembly.compile(pglite),
      WebAssembly.compile(initdb),
    ]);
    return {
      pgliteWasmModule,
      initdbWasmModule,
      fsBundle: new Blob([bundle]),
    } as Partial<PGliteOptions>;
  })().catch((error: unknown) => {
    // Fall back to PGlite's own loading; forget the failure so a later call can try again.
    runtime = undefined;
    void error;
    return {};
  });
  return runtime;
}
