import { dirname, resolve } from "node:path";
import type { OpenStoreOptions, Store } from "../store/store.js";
import type { CliIo } from "./cli-io.js";
import type { LoadedProject } from "./project-loader.js";

/** The global options every command takes. */
export interface GlobalOptions {
  readonly project?: string;
  readonly databaseUrl?: string;
  readonly verbose?: boolean;
}

/** The default project file, relative to the working directory. */
export const DEFAULT_PROJECT_FILE = "strata.config.ts";

/**
 * What one CLI invocation works with: its io, the resolved project file and a lazily opened
 * store that is closed when the command ends.
 */
export class CliContext {
  readonly io: CliIo;
  readonly options: GlobalOptions;
  #store: Promise<Store> | undefined;
  #project: Promise<LoadedProject> | undefined;

  constructor(io: CliIo, options: GlobalOptions) {
    this.io = io;
    this.options = options;
  }

  /** `--project`, else `STRATA_PROJECT`, else `./strata.config.ts`, as an absolute path. */
  get projectFile(): string {
    const file = this.options.project ?? this.io.env.STRATA_PROJECT ?? DEFAULT_PROJECT_FILE;
    return resolve(this.io.cwd, file);
  }

  get projectDir(): string {
    return dirname(this.projectFile);
  }

  /** `--database-url`, else `DATABASE_URL`; undefined means the embedded database. */
  get databaseUrl(): string | undefined {
    const url = this.options.databaseUrl ?? this.io.env.DATABASE_URL;
    return url === undefined || url === "" ? undefined : url;
  }

  /** Opens the store once (migrating it unless told not to) and returns it on every call. */
  store(options: Pick<OpenStoreOptions, "migrate"> = {}): Promise<Store> {
    // The store's modules (and the database drivers) load only for commands that use them.
    this.#store ??= import("../store/store.js").then(async ({ openStore }) => {
      const store = await openStore({
        databaseUrl: this.databaseUrl,
        projectDir: this.projectDir,
        ...options,
      });
      // A run whose process died (SIGKILL, a second Ctrl-C) is still `running`: fix it up.
      if (options.migrate !== false) {
        const { reapAbandonedRuns } = await import("../store/run-records.js");
        await reapAbandonedRuns(store.db);
      }
      return store;
    });
    return this.#store;
  }

  /**
   * Loads and validates the project file once; its endpoints' API keys become secrets, and
   * models without a price are warned about.
   */
  project(): Promise<LoadedProject> {
    this.#project ??= Promise.all([
      import("./project-loader.js"),
      import("../inference/api-keys.js"),
      import("./unpriced-models.js"),
    ]).then(async ([{ loadProject }, { registerApiKeys }, { warnUnpricedModels }]) => {
      const project = await loadProject(this.projectFile, { env: this.io.env });
      registerApiKeys(project.definition, this.io.env);
      warnUnpricedModels(project.definition, this.io.stderr);
      return project;
    });
    return this.#project;
  }

  /**
   * Loads the project and opens the store, refreshing the declared catalog
   * (`strata.assets`, `strata.asset_deps`) as every project load does.
   */
  async projectAndStore(): Promise<{ project: LoadedProject; store: Store }> {
    if (this.databaseUrl === undefined) {
      // The embedded database's WebAssembly compiles on other threads while the project loads.
      void import("../store/embedded-modules.js").then((m) => m.preloadEmbeddedStore());
    }
    const project = await this.project();
    const store = await this.store();
    const [{ syncCatalog }, { catalogOf }] = await Promise.all([
      import("../store/catalog.js"),
      import("../materialize/run-project.js"),
    ]);
    await syncCatalog(store.db, catalogOf(project.definition));
    return { project, store };
  }

  /** Closes what the command opened. */
  async close(): Promise<void> {
    const store = this.#store;
    this.#store = undefined;
    if (store !== undefined) await (await store.catch(() => undefined))?.close();
  }
}
