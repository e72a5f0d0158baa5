import { StrataError } from "../errors.js";
import type { AssetDefinition } from "./asset-definition.js";

/** An OpenAI-compatible endpoint: a vLLM or SGLang server's `/v1`, or a hosted API. */
export interface EndpointConfig {
  /** Defaults to `OPENAI_BASE_URL`. */
  readonly baseURL?: string;
  /** The env var holding the API key (default `OPENAI_API_KEY`); the key is never stored. */
  readonly apiKeyEnv?: string;
  /** In-flight calls allowed at once (default 64). */
  readonly maxConcurrency?: number;
  /** Per-call timeout in milliseconds (default 120 000). */
  readonly timeoutMs?: number;
  /**
   * How long a document keeps retrying while the endpoint cannot be reached at all (a server
   * restarting, a network blip), before those attempts count against `maxAttempts`
   * (default 120 000 ms).
   */
  readonly outageToleranceMs?: number;
}

/** Prices in USD per million tokens, snapshotted onto every ledger row. */
export interface ModelPrice {
  readonly inputPerMTok: number;
  /** Defaults to the input price (no discount for cached tokens). */
  readonly cachedInputPerMTok?: number;
  readonly outputPerMTok: number;
}

/** A model the project's assets may call by key. */
export interface ModelConfig {
  /** A key of the project's `endpoints`. */
  readonly endpoint: string;
  /** The model name the endpoint knows (`qwen3-8b`). */
  readonly name: string;
  /** Without a price, calls are recorded with cost 0. */
  readonly price?: ModelPrice;
  /** Requests per minute allowed, enforced before sending. */
  readonly rpm?: number;
  /** Tokens per minute allowed (prompt estimate plus max_tokens), enforced before sending. */
  readonly tpm?: number;
  /** Attempts per document before falling back (default 5). */
  readonly maxAttempts?: number;
}

/** Where a project keeps its values (`defineProject({ storage })`). */
export interface StorageConfig {
  /**
   * The folder Arrow values go under, relative to the project file's folder or absolute: a
   * shared mount, so that every machine running the project's steps reads them. Default
   * `.strata/storage`; `STRATA_STORAGE` overrides it.
   */
  readonly root: string;
}

/** What `defineProject({...})` takes. */
export interface ProjectSpec {
  /** Names the project (OpenLineage namespace `strata://<name>`); defaults to the directory name. */
  readonly name?: string;
  readonly assets: ReadonlyArray<AssetDefinition<object>>;
  readonly endpoints?: Readonly<Record<string, EndpointConfig>>;
  readonly models?: Readonly<Record<string, ModelConfig>>;
  readonly storage?: StorageConfig;
}

/** An immutable project: the assets and the inference configuration. */
export interface ProjectDefinition {
  readonly name: string | null;
  readonly assets: ReadonlyArray<AssetDefinition<object>>;
  readonly endpoints: Readonly<Record<string, EndpointConfig>>;
  readonly models: Readonly<Record<string, ModelConfig>>;
  /** Null: the default storage root (see {@link StorageConfig}). */
  readonly storage: StorageConfig | null;
}

/**
 * Declares the project a `strata.config.ts` file exports by default.
 *
 * The definition is checked as a whole (keys, deps, cycles, models) when strata loads it; see
 * `validateProject`.
 *
 * @example
 * export default defineProject({ assets: [documents, analyses] });
 */
export function defineProject(spec: ProjectSpec): ProjectDefinition {
  if (spec === null || typeof spec !== "object" || !Array.isArray(spec.assets)) {
    throw new StrataError("bad_project", "defineProject() takes an object with an `assets` array");
  }
  return Object.freeze({
    name: spec.name ?? null,
    assets: Object.freeze([...spec.assets]),
    endpoints: Object.freeze({ ...(spec.endpoints ?? {}) }),
    models: Object.freeze({ ...(spec.models ?? {}) }),
    storage: spec.storage === undefined ? null : Object.freeze({ ...spec.storage }),
  });
}
