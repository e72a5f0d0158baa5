import { oneLineMessage } from "../util/error-message.js";

/**
 * How deep a nested value may go. Deeper values are refused before `JSON.stringify` could run out
 * of stack, and Python's `json` (recursion limit 1,000) can still read what was stored.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * Why a nested value cannot become JSON text without losing data: what was found, where, and
 * what to do. The message is one line.
 */
export class JsonTextError extends Error {
  /** What was found: "a bigint", "a reference cycle". */
  readonly what: string;
  /** Where in the value: `.a.b[3]`, empty for the value itself. */
  readonly path: string;
  /** The fix. */
  readonly advice: string;

  constructor(what: string, path: string, advice: string, options?: ErrorOptions) {
    super(`${what}${path === "" ? "" : ` at ${path}`}; ${advice}`, options);
    this.name = "JsonTextError";
    this.what = what;
    this.path = path;
    this.advice = advice;
  }
}

/**
 * The JSON text of a nested object or array, refusing what `JSON.stringify` would silently drop
 * or mangle, or fail on with a stack overflow or a multi-line message.
 *
 * Follows `JSON.stringify` (a nested Date becomes its ISO string, `undefined` is dropped, an
 * object's `toJSON()` decides its own form), except that these throw a {@link JsonTextError}:
 * a reference cycle, nesting deeper than {@link MAX_JSON_DEPTH}, a function, symbol or bigint
 * (unless `BigInt.prototype.toJSON` is defined), a Map, Set, ArrayBuffer or typed array, and a
 * getter or `toJSON()` that throws. A `toJSON()` that returns `undefined` gives `undefined`.
 *
 * @example
 * toJsonText({ tags: ["a"] }); // '{"tags":["a"]}'
 * toJsonText({ n: 1n }); // throws JsonTextError "a bigint at .n; convert it to a string or a number"
 */
export function toJsonText(value: unknown): string | undefined {
  const check = new JsonCheck();
  try {
    check.visit(value, 0);
  } catch (error) {
    if (error instanceof JsonTextError) throw error;
    throw new JsonTextError(
      `a value that threw when read (${oneLineMessage(error)})`,
      check.path(),
      "return plain data",
      { cause: error },
    );
  }
  try {
    return JSON.stringify(value);
  } catch (error) {
    // only a toJSON() can get here: it threw, or returned a cycle or a bigint
    throw new JsonTextError(
      `a value whose toJSON() failed (${oneLineMessage(error)})`,
      "",
      "make toJSON() return plain data",
      { cause: error },
    );
  }
}

/** One walk over a value, keeping the objects and keys from the root down to where it is. */
class JsonCheck {
  readonly #ancestors: object[] = [];
  readonly #keys: Array<string | number> = [];

  visit(value: unknown, depth: number): void {
    switch (typeof value) {
      case "string":
      case "number":
      case "boolean":
      case "undefined":
        return;
      case "bigint":
        if (typeof (BigInt.prototype as { toJSON?: unknown }).toJSON === "function") return;
        throw this.#refuse("a bigint", "convert it to a string or a number");
      case "function":
      case "symbol":
        throw this.#refuse(`a ${typeof value}`, "remove it (JSON would silently drop it)");
    }
    if (value === null) return;
    const object = value as object;
    // the object decides its own JSON form (a Date's is its ISO string)
    if (typeof (object as { toJSON?: unknown }).toJSON === "function") return;
    if (object instanceof Map || object instanceof Set) {
      throw this.#refuse(
        `a ${object instanceof Map ? "Map" : "Set"}`,
        "convert it to a plain object or an array",
      );
    }
    if (object instanceof ArrayBuffer || ArrayBuffer.isView(object)) {
      throw this.#refuse(
        `a ${object.constructor?.name ?? "binary buffer"}`,
        "convert it to an array",
      );
    }
    if (this.#ancestors.includes(object)) {
      throw this.#refuse("a reference cycle", "remove the back reference");
    }
    if (depth >= MAX_JSON_DEPTH) {
      throw new JsonTextError(
        `a value nested more than ${MAX_JSON_DEPTH} levels deep`,
        "",
        "flatten it or store it as a string",
      );
    }
    this.#ancestors.push(object);
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        this.#keys.push(i);
        this.visit(object[i], depth + 1);
        this.#keys.pop();
      }
    } else {
      const record = object as Record<string, unknown>;
      const keys = Object.keys(record);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        this.#keys.push(key);
        this.visit(record[key], depth + 1);
        this.#keys.pop();
      }
    }
    this.#ancestors.pop();
  }

  /** The path from the root to the value being visited, as `.a.b[3]["odd key"]`. */
  path(): string {
    let path = "";
    for (const key of this.#keys) {
      path +=
        typeof key === "number"
          ? `[${key}]`
          : /^[A-Za-z_$][\w$]*$/.test(key)
            ? `.${key}`
            : `[${JSON.stringify(key)}]`;
    }
    return path;
  }

  #refuse(what: string, advice: string): JsonTextError {
    return new JsonTextError(what, this.path(), advice);
  }
}
