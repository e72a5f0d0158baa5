import type { ProjectDefinition } from "../assets/project-definition.js";
import { writeLine } from "./cli-io.js";

/**
 * Warns on `stream` about the project's models that have no price: their calls are recorded at
 * cost 0, which `strata costs` shows as "unpriced", never as a silent $0.
 *
 * @example
 * warnUnpricedModels(project.definition, process.stderr);
 */
export function warnUnpricedModels(
  project: ProjectDefinition,
  stream: NodeJS.WritableStream,
): void {
  const unpriced = Object.entries(project.models)
    .filter(([, model]) => model !== null && typeof model === "object" && model.price === undefined)
    .map(([key]) => `"${key}"`);
  if (unpriced.length === 0) return;
  const which =
    unpriced.length === 1 ? `model ${unpriced[0]} has` : `models ${unpriced.join(", ")} have`;
  writeLine(
    stream,
    `strata: warning: ${which} no price, so ${unpriced.length === 1 ? "its" : "their"} calls are recorded at $0 and shown as unpriced in "strata costs"; add price: { inputPerMTok, outputPerMTok } (USD per million tokens)`,
  );
}
