import type { AssetDefinition } from "../assets/asset-definition.js";
import type { ProjectDefinition } from "../assets/project-definition.js";
import { validateProject } from "../assets/validate-project.js";
import { AssetGraph } from "../lineage/asset-graph.js";
import type { CatalogAsset } from "../store/catalog.js";
import { resolveStorageRoot } from "../values/storage-path.js";

/**
 * A project validated and turned into its lineage graph, as `loadProject` returns it for a
 * project file. `name` and `file` are recorded on its runs (a resume names the project that
 * started a run); `dir` is where its Arrow files go by default.
 */
export interface PreparedProject {
  readonly definition: ProjectDefinition;
  readonly graph: AssetGraph;
  readonly name?: string;
  readonly file?: string;
  readonly dir?: string;
}

/**
 * Where a project's values are: `STRATA_STORAGE` in `env`, else its `storage.root`, else
 * `.strata/storage` in its folder (the working directory for a project without one).
 *
 * @example
 * const root = projectStorageRoot(await loadProject(file), process.env);
 */
export function projectStorageRoot(
  project: Pick<PreparedProject, "definition" | "dir">,
  env: NodeJS.ProcessEnv,
): string {
  return resolveStorageRoot(project.dir ?? process.cwd(), {
    env,
    storage: project.definition.storage,
  });
}

/** What the run façade takes as a project: `defineProject(...)`'s value, or a loaded project. */
export type RunnableProject = ProjectDefinition | PreparedProject;

/**
 * The project as a run needs it: a loaded project as it is (it was validated when loaded), a
 * definition validated against `env` (for `OPENAI_BASE_URL`) with its graph built.
 *
 * @throws ProjectValidationError listing every problem of an invalid definition.
 *
 * @example
 * const { graph } = prepareProject(defineProject({ assets: [documents] }), process.env);
 */
export function prepareProject(project: RunnableProject, env: NodeJS.ProcessEnv): PreparedProject {
  if (isPrepared(project)) return project;
  validateProject(project, { env });
  return {
    definition: project,
    graph: AssetGraph.fromAssets(project.assets as ReadonlyArray<AssetDefinition<object>>),
    ...(project.name !== null ? { name: project.name } : {}),
  };
}

// Not `instanceof`: a loaded project may come from another copy of strata's modules.
function isPrepared(project: RunnableProject): project is PreparedProject {
  return "definition" in project && "graph" in project;
}

/**
 * The declared assets as the catalog tables (`strata.assets`, `strata.asset_deps`) hold them.
 *
 * @example
 * await syncCatalog(store.db, catalogOf(project.definition));
 */
export function catalogOf(definition: ProjectDefinition): ReadonlyArray<CatalogAsset> {
  return definition.assets.map((a) => ({
    key: a.key,
    group: a.group,
    description: a.description,
    codeVersion: a.codeVersion,
    tags: a.tags,
    owners: a.owners,
    kinds: a.kinds,
    partitions: a.partitions?.describe() ?? null,
    deps: a.deps.map((d) => d.key),
  }));
}
