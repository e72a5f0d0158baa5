import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The compiled CLI entry (`npm test` builds before running the tests). */
export const CLI_PATH = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

/** What a CLI process printed and how it ended. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCliProcess}. */
export interface RunCliOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
}

/**
 * Runs the real `strata` binary in a child process, the way a user does, and waits for it.
 * The child's environment drops DATABASE_URL and STRATA_PROJECT unless `env` sets them.
 */
export function runCliProcess(
  args: ReadonlyArray<string>,
  options: RunCliOptions,
): Promise<CliResult> {
  const child = startCliProcess(args, options);
  return child.result;
}

/** Starts the CLI and returns the child with a promise of its result. */
export function startCliProcess(args: ReadonlyArray<string>, options: RunCliOptions) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.STRATA_PROJECT;
  Object.assign(env, options.env ?? {});
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { child, result, output: () => ({ stdout, stderr }) };
}
