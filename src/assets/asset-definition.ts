import type { Table } from "apache-arrow";
import { StrataError } from "../errors.js";
import type { AssetContext, Row } from "./asset-context.js";
import type { AssetKey } from "./asset-key.js";
import type { PartitionsDefinition } from "./partitions.js";

/** What `compute` may return: rows, or an Arrow table. */
export type ComputeResult<R> = ReadonlyArray<R> | Table;

/** A dependency: an asset (its row type flows into `compute`) or a key string (`unknown`). */
export type DepRef = AssetDefinition<object> | string;

/** The `deps` object of an asset: input name → dependency. */
export type DepsSpec = Readonly<Record<string, DepRef>>;

/** The rows an asset hands downstream. */
export type RowsOf<A> = A extends AssetDefinition<infer R> ? R[] : unknown;

/** The inputs object `compute` receives for a `deps` object. */
export type InputsOf<D extends DepsSpec> = { readonly [K in keyof D]: RowsOf<D[K]> };

/** One declared dependency, normalized. */
export interface AssetDep {
  /** The property name under which `compute` receives the value. */
  readonly name: string;
  readonly key: AssetKey;
}

/**
 * What `asset({...})` takes.
 *
 * @example
 * asset({ key: "raw/documents", compute: async () => [{ id: "d1", text: "hello" }] });
 */
export interface AssetSpec<R extends object, D extends DepsSpec> {
  /** `a/b` path form; segments `[A-Za-z0-9_-]+`. */
  readonly key: string;
  readonly group?: string;
  readonly description?: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly owners?: ReadonlyArray<string>;
  readonly kinds?: ReadonlyArray<string>;
  /** Changing it makes this asset stale, and downstream after it is rebuilt. */
  readonly codeVersion?: string;
  readonly partitions?: PartitionsDefinition;
  readonly deps?: D;
  readonly compute: (
    ctx: AssetContext,
    inputs: InputsOf<D>,
  ) => ComputeResult<R> | Promise<ComputeResult<R>>;
}

/**
 * An immutable asset definition, as `asset({...})` returns it.
 *
 * `R` is the row type the asset produces; it flows into downstream `compute` functions.
 */
export interface AssetDefinition<R extends object = Row> {
  readonly key: AssetKey;
  readonly group: string;
  readonly description: string | null;
  readonly tags: Readonly<Record<string, string>>;
  readonly owners: ReadonlyArray<string>;
  readonly kinds: ReadonlyArray<string>;
  readonly codeVersion: string | null;
  readonly partitions: PartitionsDefinition | null;
  readonly deps: ReadonlyArray<AssetDep>;
  // Method syntax on purpose: parameters are then bivariant, so a definition with typed inputs
  // is still an AssetDefinition<R>.
  compute(
    ctx: AssetContext,
    inputs: Readonly<Record<string, unknown>>,
  ): ComputeResult<R> | Promise<ComputeResult<R>>;
}

/** The default group of an asset that names none. */
export const DEFAULT_GROUP = "default";

/**
 * Declares an asset: a named, versioned dataset that strata materializes from its deps.
 *
 * Syntax checks that need no other asset happen here (a `compute` that is not a function, tags
 * that are not strings); key syntax and everything about the graph is checked when the project is
 * validated, so that every problem is reported at once.
 *
 * @example
 * export const documents = asset({ key: "raw/documents", compute: async () => [{ id: "d1", text: "hi" }] });
 * export const lengths = asset({
 *   key: "lengths",
 *   deps: { documents },
 *   compute: async (_ctx, { documents }) => documents.map((d) => ({ id: d.id, length: d.text.length })),
 * });
 */
export function asset<R extends object, D extends DepsSpec = Record<never, never>>(
  spec: AssetSpec<R, D>,
): AssetDefinition<R> {
  if (spec === null || typeof spec !== "object") {
    throw new StrataError("invalid_definition", "asset() takes an object such as { key, compute }");
  }
  const key = typeof spec.key === "string" ? spec.key : String(spec.key);
  if (typeof spec.compute !== "function") {
    throw new StrataError("invalid_definition", `asset "${key}" has no compute function`);
  }
  const tags: Record<string, string> = {};
  for (const [name, value] of Object.entries(spec.tags ?? {})) {
    if (typeof value !== "string") {
      throw new StrataError(
        "invalid_definition",
        `asset "${key}" has a non-string value for tag "${name}"; tag values are strings`,
      );
    }
    tags[name] = value;
  }
  const deps: AssetDep[] = [];
  for (const [name, dep] of Object.entries(spec.deps ?? {})) {
    const depKey = typeof dep === "string" ? dep : (dep as { key?: unknown } | null)?.key;
    if (typeof depKey !== "string") {
      throw new StrataError(
        "invalid_definition",
        `asset "${key}" has dep "${name}" that is neither an asset nor a key string`,
      );
    }
    deps.push(Object.freeze({ name, key: depKey }));
  }
  const compute = spec.compute as AssetDefinition<R>["compute"];
  return Object.freeze({
    key,
    group: spec.group ?? DEFAULT_GROUP,
    description: spec.description ?? null,
    tags: Object.freeze(tags),
    owners: Object.freeze([...(spec.owners ?? [])]),
    kinds: Object.freeze([...(spec.kinds ?? [])]),
    codeVersion: spec.codeVersion ?? null,
    partitions: spec.partitions ?? null,
    deps: Object.freeze(deps),
    compute,
  });
}
