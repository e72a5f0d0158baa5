import type { StrataErrorCode, ValidationProblem } from "../errors.js";
import { closestMatch } from "../util/edit-distance.js";
import { endpointUrlProblem, redactUrl } from "./endpoint-url.js";
import type { ProjectDefinition } from "./project-definition.js";

/** The environment a project's endpoints read: `OPENAI_BASE_URL` for those without `baseURL`. */
export type EndpointEnv = Readonly<Record<string, string | undefined>>;

/**
 * The problems of a project's inference configuration: its `endpoints` and `models`.
 *
 * Codes: `unknown_endpoint` for a model whose endpoint is not a key of `endpoints` (with the
 * closest name as a suggestion); `invalid_definition` for a model without a name, a price that is
 * missing a field or negative, `rpm`, `tpm` or `maxAttempts` that are not positive integers, an
 * endpoint whose `maxConcurrency` is not a positive integer, whose `timeoutMs` is not positive,
 * whose `baseURL` is not one strata can call (see `endpointUrlProblem`: no scheme, a scheme other
 * than http or https, credentials in it, empty, not a URL) or whose `apiKeyEnv` is empty. Given
 * `env`, an endpoint without `baseURL` has its fallback, `OPENAI_BASE_URL`, checked the same way
 * (unset or blank, it is api.openai.com, as for the OpenAI SDK). `validateProject` includes these.
 *
 * @example
 * findModelProblems(defineProject({ assets: [], models: { small: { endpoint: "gpu", name: "m" } } }));
 * // [{ code: "unknown_endpoint", message: 'model "small" uses unknown endpoint "gpu"; ...', assets: [] }]
 */
export function findModelProblems(
  project: ProjectDefinition,
  env?: EndpointEnv,
): ValidationProblem[] {
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
    const urlProblem = baseUrlProblem(endpoint.baseURL, env);
    if (urlProblem !== null) problems.push(invalid(`${where} ${urlProblem}`));
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

/** "has an invalid baseURL ...: why", for the endpoint's own URL or its `OPENAI_BASE_URL`. */
function baseUrlProblem(baseURL: unknown, env: EndpointEnv | undefined): string | null {
  if (baseURL !== undefined) {
    const why = endpointUrlProblem(baseURL);
    return why === null ? null : `has an invalid baseURL ${shown(baseURL)}: ${why}`;
  }
  // Trimmed, and blank taken as unset, as the OpenAI SDK reads it.
  const fallback = env?.OPENAI_BASE_URL?.trim();
  if (fallback === undefined || fallback === "") return null;
  const why = endpointUrlProblem(fallback);
  return why === null
    ? null
    : `has no baseURL, and OPENAI_BASE_URL ${shown(fallback)} is invalid: ${why} (or give the endpoint a baseURL)`;
}

function shown(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(redactUrl(value)) : String(value);
}

function problem(code: StrataErrorCode, message: string): ValidationProblem {
  return Object.freeze({ code, message, assets: Object.freeze([]) });
}
