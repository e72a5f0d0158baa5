import { redactSecrets } from "../util/redactor.js";

/** Where a CLI invocation writes and what it sees; tests run the CLI in-process with their own. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** The real process's streams, environment and working directory. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** Writes one line to a stream. */
export function writeLine(stream: NodeJS.WritableStream, line = ""): void {
  stream.write(`${line}\n`);
}

/**
 * `io` whose streams redact the process's secrets (API keys, the database password) from
 * everything written to them: summaries, errors, `--verbose` stacks, progress and log lines.
 * Everything else about the streams (isTTY, columns, events) is the underlying stream's.
 *
 * @example
 * const code = await runCli(argv, redactingIo(processIo()));
 */
export function redactingIo(io: CliIo): CliIo {
  return { ...io, stdout: redactingStream(io.stdout), stderr: redactingStream(io.stderr) };
}

function redactingStream<S extends NodeJS.WritableStream>(stream: S): S {
  const write = (chunk: unknown, ...rest: unknown[]): boolean => {
    const text =
      typeof chunk === "string"
        ? chunk
        : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array
          ? Buffer.from(chunk).toString("utf8")
          : undefined;
    const out = text === undefined ? chunk : redactSecrets(text);
    return (stream.write as (...args: unknown[]) => boolean).call(stream, out, ...rest);
  };
  return new Proxy(stream, {
    get(target, property) {
      if (property === "write") return write;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
