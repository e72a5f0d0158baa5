import { isAbsolute, join, resolve } from "node:path";
import { isValidAssetKey } from "../assets/asset-key.js";
import type { StorageConfig } from "../assets/project-definition.js";
import { StrataError } from "../errors.js";

/**
 * The directory name that stands for "no partition" in {@link storagePath}.
 *
 * @example
 * storagePath(".strata/storage", "raw/documents", null, "m1"); // .../raw/documents/__all__/m1.arrow
 */
export const UNPARTITIONED_DIR = "__all__";

/**
 * Where one materialization's value is stored, relative to the storage root, as recorded in
 * `strata.materializations.storage_path`:
 * `<asset key segments>/<partition or __all__>/<materializationId>.arrow`, "/"-separated on every
 * platform. Recorded relative, a value is found by any machine that mounts the same storage,
 * wherever it mounts it.
 *
 * Partition keys may hold `:` (hourly partitions such as `2026-01-01-05:00`), but never a path
 * separator, `..` or NUL, so no key can point outside its asset's directory.
 *
 * @throws StrataError `invalid_key` for a malformed asset key, `bad_partition` for an unsafe
 *   partition key, `bad_value` for an unsafe materialization id.
 *
 * @example
 * storageKey("raw/documents", "en", "m1"); // "raw/documents/en/m1.arrow"
 */
export function storageKey(
  assetKey: string,
  partitionKey: string | null,
  materializationId: string,
): string {
  if (!isValidAssetKey(assetKey)) {
    throw new StrataError(
      "invalid_key",
      `asset key "${assetKey}" is not valid; use segments of letters, digits, "_" and "-" joined by "/"`,
    );
  }
  if (partitionKey !== null && !isSafePathSegment(partitionKey)) {
    throw new StrataError(
      "bad_partition",
      `partition key ${JSON.stringify(partitionKey)} of asset "${assetKey}" cannot name a directory; remove "/", "\\", ".." and NUL characters from it`,
    );
  }
  if (!isSafePathSegment(materializationId)) {
    throw new StrataError(
      "bad_value",
      `materialization id ${JSON.stringify(materializationId)} cannot name a file; remove "/", "\\", ".." and NUL characters from it`,
    );
  }
  return `${assetKey}/${partitionKey ?? UNPARTITIONED_DIR}/${materializationId}.arrow`;
}

/**
 * The file that holds one materialization's value: {@link storageKey} under `storageRoot`.
 *
 * @throws StrataError as {@link storageKey} does.
 *
 * @example
 * storagePath(".strata/storage", "raw/documents", "en", "m1");
 * // ".strata/storage/raw/documents/en/m1.arrow"
 */
export function storagePath(
  storageRoot: string,
  assetKey: string,
  partitionKey: string | null,
  materializationId: string,
): string {
  return storedValuePath(storageRoot, storageKey(assetKey, partitionKey, materializationId));
}

/**
 * The file a recorded `storage_path` names: relative ones (this version's) under `storageRoot`;
 * absolute ones (recorded by earlier versions) as they are.
 *
 * @example
 * storedValuePath("/mnt/strata", "raw/documents/en/m1.arrow"); // "/mnt/strata/raw/documents/en/m1.arrow"
 * storedValuePath("/mnt/strata", "/srv/app/.strata/storage/x/__all__/m0.arrow"); // unchanged
 */
export function storedValuePath(storageRoot: string, recorded: string): string {
  if (isAbsolute(recorded)) return recorded;
  return join(storageRoot, ...recorded.split("/"));
}

/**
 * The default storage root of a project: `<project dir>/.strata/storage`.
 *
 * @example
 * storageRootOf("/srv/app"); // "/srv/app/.strata/storage"
 */
export function storageRootOf(projectDir: string): string {
  return join(projectDir, ".strata", "storage");
}

/** The environment variable that names the storage root, over the project's `storage.root`. */
export const STORAGE_ROOT_ENV = "STRATA_STORAGE";

/**
 * Where a project's values go: `STRATA_STORAGE` when set, else the project's `storage.root`,
 * else {@link storageRootOf}; a relative path is taken from the project's folder.
 *
 * @example
 * resolveStorageRoot("/srv/app", { env: { STRATA_STORAGE: "/mnt/strata" } }); // "/mnt/strata"
 * resolveStorageRoot("/srv/app", { storage: { root: "values" } }); // "/srv/app/values"
 */
export function resolveStorageRoot(
  projectDir: string,
  options: {
    readonly env?: Readonly<Record<string, string | undefined>>;
    readonly storage?: StorageConfig | null;
  } = {},
): string {
  const fromEnv = options.env?.[STORAGE_ROOT_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return resolve(projectDir, fromEnv);
  if (options.storage != null) return resolve(projectDir, options.storage.root);
  return storageRootOf(projectDir);
}

function isSafePathSegment(segment: string): boolean {
  return (
    segment !== "" &&
    segment !== "." &&
    !segment.includes("/") &&
    !segment.includes("\\") &&
    !segment.includes("..") &&
    !segment.includes("\0")
  );
}
