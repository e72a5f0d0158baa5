/**
 * strata: asset-centric data pipelines for TypeScript, built for LLM inference, with an exact
 * cost ledger in Postgres.
 *
 * @example
 * import { asset, defineProject } from "strata";
 * export const documents = asset({ key: "raw/documents", compute: async () => [{ id: "d1", text: "hi" }] });
 * export default defineProject({ assets: [documents] });
 */

export type {
  AssetContext,
  AssetLogger,
  ChatMessage,
  InferResultRow,
  InferSpec,
  Row,
} from "./assets/asset-context.js";
export {
  type AssetDefinition,
  type AssetDep,
  type AssetSpec,
  asset,
  type ComputeResult,
  DEFAULT_GROUP,
  type DepRef,
  type DepsSpec,
  type InputsOf,
  type RowsOf,
} from "./assets/asset-definition.js";
export { type AssetKey, assetKeyPath, isValidAssetKey } from "./assets/asset-key.js";
export {
  dailyPartitions,
  hourlyPartitions,
  type PartitionsDefinition,
  type PartitionsKind,
  staticPartitions,
  type TimePartitionsOptions,
} from "./assets/partitions.js";
export {
  defineProject,
  type EndpointConfig,
  type ModelConfig,
  type ModelPrice,
  type ProjectDefinition,
  type ProjectSpec,
  type StorageConfig,
} from "./assets/project-definition.js";
export {
  findProjectProblems,
  type ValidateProjectOptions,
  validateProject,
} from "./assets/validate-project.js";
export { type LoadedProject, loadProject } from "./cli/project-loader.js";
export {
  ComputeError,
  ProjectValidationError,
  SelectionSyntaxError,
  StoreError,
  StrataError,
  type StrataErrorCode,
  type ValidationProblem,
} from "./errors.js";
export type { InferenceProgress } from "./inference/inference-runtime.js";
export { AssetGraph } from "./lineage/asset-graph.js";
export { type LineageJson, lineageToJson } from "./lineage/lineage-json.js";
export {
  lineageToOpenLineage,
  type OpenLineageOptions,
  type OpenLineageRunEvent,
} from "./lineage/openlineage.js";
export type { SelectionAst, TraversalDepth } from "./lineage/selection-ast.js";
export { evaluateSelection, selectAssets } from "./lineage/selection-evaluator.js";
export { formatSelection } from "./lineage/selection-formatter.js";
export { parseSelection } from "./lineage/selection-parser.js";
export {
  type AssetStatus,
  type AssetStatusReport,
  assessAssets,
} from "./materialize/asset-status.js";
export type { LogSink } from "./materialize/run-context.js";
export {
  type MaterializeOptions,
  type MaterializeResult,
  materialize,
  type ResumeRunOptions,
  resumeRun,
} from "./materialize/run-facade.js";
export type { RunHooks } from "./materialize/run-launch.js";
export type { PreparedProject, RunnableProject } from "./materialize/run-project.js";
export type { RunEvent, RunResult, StepResult, StepStatus } from "./materialize/run-result.js";
export { RunValues } from "./materialize/run-values.js";
export { type Simulator, startSimulator } from "./sim/simulator.js";
export type { SimulatorOptions } from "./sim/simulator-options.js";
export type { Database } from "./store/database.js";
export { migrate, migrationStatus } from "./store/migrator.js";
export { type OpenStoreOptions, openStore, type Store } from "./store/store.js";
export { tableToRows } from "./values/arrow-decoder.js";
export { rowsToTable } from "./values/arrow-encoder.js";
export { readArrowFile, type StoredValue } from "./values/arrow-file.js";
export {
  resolveStorageRoot,
  STORAGE_ROOT_ENV,
  storedValuePath,
} from "./values/storage-path.js";
