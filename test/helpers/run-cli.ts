import { spawn } from "node:child_process";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";

/** The compiled CLI entry (`npm test` builds before running the tests). */
export const CLI_PATH = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));

/**
 * The compiled program that the entry runs. vitest's config externalizes `dist/`, so this is the
 * module Node itself loads: the one copy of strata that the CLI and a project's
 * `import ... from "strata"` (resolved through `<project>/node_modules/strata`) share.
 */
const PROGRAM_URL = new URL("../../dist/cli/program.js", import.meta.url).href;

/** What a CLI process printed and how it ended. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCliProcess} and {@link runCliInProcess}. */
export interface RunCliOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
}

/**
 * Runs the strata CLI inside this process, through the compiled program's `runCli` with its own
 * io: output collected, `cwd` and the environment given (never this process's own), exactly as
 * the binary does, minus the process: no Node start-up and no import of the package per command.
 * The environment is {@link cliEnv}'s. `signal` is always null; `timeoutMs` is not enforced (a
 * test's own timeout is). Tests about the process itself (exit statuses, signals, crashes, pipes)
 * use {@link runCliProcess}.
 */
export async function runCliInProcess(
  args: ReadonlyArray<string>,
  options: RunCliOptions,
): Promise<CliResult> {
  const { runCli } = (await import(PROGRAM_URL)) as typeof import("../../src/cli/program.js");
  const stdout = collectingStream();
  const stderr = collectingStream();
  const code = await runCli(args, {
    stdout: stdout.stream,
    stderr: stderr.stream,
    env: cliEnv(options.env),
    cwd: options.cwd,
  });
  return { code, signal: null, stdout: stdout.text(), stderr: stderr.text() };
}

/** A writable stream (not a terminal) that keeps what is written to it. */
function collectingStream(): { stream: Writable; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: unknown, _encoding, callback) {
      chunks.push(typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString());
      callback();
    },
  });
  return { stream, text: () => chunks.join("") };
}

/** This process's environment without DATABASE_URL and STRATA_PROJECT, then `env` on top. */
export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env };
  delete base.DATABASE_URL;
  delete base.STRATA_PROJECT;
  return Object.assign(base, env);
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
  const child = spawn(process.execPath, [CLI_PATH, ...args], {
    cwd: options.cwd,
    env: cliEnv(options.env),
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
