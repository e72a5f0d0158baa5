import type { StrataErrorCode, ValidationProblem } from "../errors.js";
import { closestMatch } from "../util/edit-distance.js";
import type { ProjectDefinition } from "./project-definition.js";

/**
 * The problems of a project's inference configuration: its `endpoints` and `models`.
 *
 * Codes: `unknown_endpoint` for a model whose endpoint is not a key of `endpoints` (with the
 * closest name as a suggestion); `invalid_definition` for a model without a name, a price that is
 * missing a field or negative, `rpm`, `tpm` or `maxAttempts` that are not positive integers, an
 * endpoint whose `maxConcurrency` is not a positive integer, whose `timeoutMs` is not positive,
 * whose `baseURL` is not a URL or whose `apiKeyEnv` is empty. `validateProject` includes these.
 *
 * @example
 * findModelProblems(defineProject({ assets: [], models: { small: { endpoint: "gpu", name: "m" } } }));
 * // [{ code: "unknown_endpoint", message: 'model "small" uses unknown endpoint "gpu"; ...', assets: [] }]
 */
export function findModelProblems(project: ProjectDefinition): ValidationProblem[] {
  const problems: ValidationProblem[] = [];
  const endpoints = project.endpoints ?? {};
  for (const [name, endpoint] of Object.entries(endpoints)) {
    const where = `endpoint "${name}"`;
    if (endpoint === null || typeof endpoint !== "object") {
      problems.push(
        invalid(`${where} is not an object; use { baseURL, apiKeyEnv, maxConcurrency }`),
      );
      continue;
    }
    if (endpoint.baseURL !== undefined && !canParseUrl(endpoint.baseURL)) {
      problems.push(
        invalid(
          `${where} has an invalid baseURL "${String(endpoint.baseURL)}"; use a URL such as "http://127.0.0.1:8000/v1"`,
        ),
      );
    }
    if (
      endpoint.apiKeyEnv !== undefined &&
      (typeof endpoint.apiKeyEnv !== "string" || endpoint.apiKeyEnv === "")
    ) {
      problems.push(
        invalid(
          `${where} has an invalid apiKeyEnv; name the env var holding the key, such as "OPENAI_API_KEY"`,
        ),
      );
    }
    positiveInteger(problems, where, "maxConcurrency", endpoint.maxConcurrency);
    if (
      endpoint.timeoutMs !== undefined &&
      !(isFiniteNumber(endpoint.timeoutMs) && endpoint.timeoutMs > 0)
    ) {
      problems.push(
        invalid(
          `${where} has timeoutMs ${String(endpoint.timeoutMs)}; use a positive number of milliseconds`,
        ),
      );
    }
  }
  const endpointNames = Object.keys(endpoints);
  for (const [key, model] of Object.entries(project.models ?? {})) {
    const where = `model "${key}"`;
    if (model === null || typeof model !== "object") {
      problems.push(invalid(`${where} is not an object; use { endpoint, name, price }`));
      continue;
    }
    if (typeof model.endpoint !== "string" || !Object.hasOwn(endpoints, model.endpoint)) {
      const suggestion =
        typeof model.endpoint === "string"
          ? closestMatch(model.endpoint, endpointNames)
          : undefined;
      const fix =
        suggestion === undefined
          ? `add it to the project's endpoints${endpointNames.length > 0 ? ` (known: ${endpointNames.map((e) => `"${e}"`).join(", ")})` : ""}`
          : `did you mean "${suggestion}"?`;
      problems.push(
        problem(
          "unknown_endpoint",
          `${where} uses unknown endpoint "${String(model.endpoint)}"; ${fix}`,
        ),
      );
    }
    if (typeof model.name !== "string" || model.name.trim() === "") {
      problems.push(
        invalid(
          `${where} has no name; set name to the model its endpoint serves, such as "qwen3-8b"`,
        ),
      );
    }
    checkPrice(problems, where, model.price);
    positiveInteger(problems, where, "rpm", model.rpm);
    positiveInteger(problems, where, "tpm", model.tpm);
    positiveInteger(problems, where, "maxAttempts", model.maxAttempts);
  }
  return problems;
}

function checkPrice(problems: ValidationProblem[], where: string, price: unknown): void {
  if (price === undefined) return;
  if (price === null || typeof price !== "object") {
    problems.push(
      invalid(
        `${where} has an invalid price; use { inputPerMTok, outputPerMTok } in USD per million tokens`,
      ),
    );
    return;
  }
  const fields = price as Record<string, unknown>;
  for (const field of ["inputPerMTok", "cachedInputPerMTok", "outputPerMTok"]) {
    const value = fields[field];
    if (value === undefined && field === "cachedInputPerMTok") continue;
    if (!isFiniteNumber(value) || value < 0) {
      problems.push(
        invalid(
          `${where} has ${value === undefined ? "no " : ""}price.${field}${value === undefined ? "" : ` ${String(value)}`}; prices are non-negative USD per million tokens`,
        ),
      );
    }
  }
}

function positiveInteger(
  problems: ValidationProblem[],
  where: string,
  field: string,
  value: unknown,
): void {
  if (value === undefined || (Number.isInteger(value) && (value as number) > 0)) return;
  problems.push(invalid(`${where} has ${field} ${String(value)}; use a positive integer`));
}

function invalid(message: string): ValidationProblem {
  return problem("invalid_definition", message);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function canParseUrl(value: unknown): boolean {
  if (typeof value !== "string") return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

function problem(code: StrataErrorCode, message: string): ValidationProblem {
  return Object.freeze({ code, message, assets: Object.freeze([]) });
}
