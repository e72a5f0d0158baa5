import type { PGlite } from "@electric-sql/pglite";

// The embedded store's modules are imported when a store is opened (or preloaded), not with
// store.ts: `strata lineage` and a project file importing "strata" need none of them.

/**
 * Starts loading what an embedded store needs, all at once: PGlite's WebAssembly compiles on
 * other threads while kysely's modules load. Calling it early (before a project file is loaded)
 * overlaps the two; later calls reuse the same work.
 *
 * @example
 * preloadEmbeddedStore(); // then load the project, then openStore(...)
 */
export function preloadEmbeddedStore(): void {
  loadEmbedded()
    .pglite.then(({ pgliteRuntime }) => pgliteRuntime({ initdb: false }))
    .catch(() => {});
}

/** The modules of an embedded store, loading. */
export interface EmbeddedModules {
  readonly pglite: Promise<{
    PGlite: typeof PGlite;
    pgliteRuntime: typeof import("./pglite-runtime.js").pgliteRuntime;
    pgliteStartParams: () => string[];
  }>;
  readonly kysely: Promise<DialectModules>;
}

/** kysely and strata's PGlite dialect for it. */
export type DialectModules = [typeof import("kysely"), typeof import("./pglite-dialect.js")];

let embedded: EmbeddedModules | undefined;

/** Loads {@link EmbeddedModules} once per process. */
export function loadEmbedded(): EmbeddedModules {
  embedded ??= {
    pglite: Promise.all([
      import("@electric-sql/pglite"),
      import("./pglite-runtime.js"),
      import("./pglite-settings.js"),
    ]).then(([{ PGlite }, { pgliteRuntime }, { pgliteStartParams }]) => {
      void pgliteRuntime({ initdb: false }); // compiling starts now
      return { PGlite, pgliteRuntime, pgliteStartParams };
    }),
    kysely: Promise.all([import("kysely"), import("./pglite-dialect.js")]),
  };
  // a failed import is reported by the open that awaits it, not as an unhandled rejection
  embedded.pglite.catch(() => {});
  embedded.kysely.catch(() => {});
  return embedded;
}
