import { join } from "node:path";
import { isValidAssetKey } from "../assets/asset-key.js";
import { StrataError } from "../errors.js";

/**
 * The directory name that stands for "no partition" in {@link storagePath}.
 *
 * @example
 * storagePath(".strata/storage", "raw/documents", null, "m1"); // .../raw/documents/__all__/m1.arrow
 */
export const UNPARTITIONED_DIR = "__all__";

/**
 * The file that holds one materialization's value:
 * `<storageRoot>/<asset key segments as directories>/<partition or __all__>/<materializationId>.arrow`.
 *
 * Partition keys may hold `:` (hourly partitions such as `2026-01-01-05:00`), but never a path
 * separator, `..` or NUL, so no key can point outside its asset's directory.
 *
 * @throws StrataError `invalid_key` for a malformed asset key, `bad_partition` for an unsafe
 *   partition key, `bad_value` for an unsafe materialization id.
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
  return join(
    storageRoot,
    ...assetKey.split("/"),
    partitionKey ?? UNPARTITIONED_DIR,
    `${materializationId}.arrow`,
  );
}

/**
 * Where a project keeps its Arrow files: `<project dir>/.strata/storage`.
 *
 * @example
 * storageRootOf("/srv/app"); // "/srv/app/.strata/storage"
 */
export function storageRootOf(projectDir: string): string {
  return join(projectDir, ".strata", "storage");
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
