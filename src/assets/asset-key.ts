/** The syntax of one asset key segment: letters, digits, `_` and `-`. */
export const ASSET_KEY_SEGMENT = /^[A-Za-z0-9_-]+$/;

const ASSET_KEY = /^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/;

/**
 * An asset key in its printed `a/b` path form.
 *
 * Keys are plain strings so that large graphs stay cheap; {@link isValidAssetKey} checks the
 * syntax and {@link assetKeyPath} splits a key into its segments.
 *
 * @example
 * const key: AssetKey = "raw/documents";
 */
export type AssetKey = string;

/** True when `key` is one or more `[A-Za-z0-9_-]+` segments joined by `/`. */
export function isValidAssetKey(key: string): boolean {
  return ASSET_KEY.test(key);
}

/**
 * The segments of a key, as Dagster's `AssetKey.path` holds them.
 *
 * @example
 * assetKeyPath("raw/documents"); // ["raw", "documents"]
 */
export function assetKeyPath(key: AssetKey): ReadonlyArray<string> {
  return key.split("/");
}
