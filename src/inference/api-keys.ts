import type { ProjectDefinition } from "../assets/project-definition.js";
import { registerSecret } from "../util/redactor.js";

/** The env var holding an endpoint's API key when it names none. */
export const DEFAULT_API_KEY_ENV = "OPENAI_API_KEY";

/**
 * Registers the API key of every endpoint of `project` (read from `env`) as a secret of the
 * process, so that no error an endpoint echoes it in is stored or printed with it.
 *
 * @example
 * registerApiKeys(project, process.env);
 */
export function registerApiKeys(project: ProjectDefinition, env: NodeJS.ProcessEnv): void {
  for (const endpoint of Object.values(project.endpoints ?? {})) {
    registerSecret(env[endpoint?.apiKeyEnv ?? DEFAULT_API_KEY_ENV]);
  }
}
