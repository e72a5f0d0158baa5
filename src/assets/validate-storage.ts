import type { ValidationProblem } from "../errors.js";
import type { ProjectDefinition } from "./project-definition.js";

/**
 * The problems of a project's `storage` (code `invalid_definition`): anything but an object
 * whose `root` is a non-empty folder path without NUL characters.
 *
 * @example
 * findStorageProblems(defineProject({ assets: [], storage: { root: "" } })); // one problem
 */
export function findStorageProblems(project: ProjectDefinition): ValidationProblem[] {
  const storage: unknown = project.storage;
  if (storage === null || storage === undefined) return [];
  const root =
    typeof storage === "object" && !Array.isArray(storage)
      ? (storage as { root?: unknown }).root
      : undefined;
  if (typeof root === "string" && root.trim() !== "" && !root.includes("\0")) return [];
  return [
    Object.freeze({
      code: "invalid_definition" as const,
      message: `storage must be { root: "<folder>" } (a non-empty path, absolute or relative to the project file's folder), not ${describe(storage)}`,
      assets: Object.freeze([]),
    }),
  ];
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
