import { type ChildProcess, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const TEMP_FILE_MODULE = pathToFileURL(
  join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "values", "temp-file.ts"),
).href;

/** A process that started writing `<path>` the way writeArrowFile does, and its temp file. */
export interface TempFileWriter {
  readonly child: ChildProcess;
  readonly tempPath: string;
  /** SIGKILLs the writer mid-write and waits until it is gone, leaving its temp file behind. */
  kill(): Promise<void>;
}

/**
 * Starts a process that opens the temporary file of `path` in `tempDir` (named by strata's own
 * tempPathFor, so with its pid and host), writes part of it and then waits, as a large write in
 * progress does. Kill it to get the leftover of a killed write.
 */
export async function startTempFileWriter(
  path: string,
  tempDir: string = dirname(path),
): Promise<TempFileWriter> {
  await mkdir(tempDir, { recursive: true });
  const script = [
    `const { tempPathFor } = await import(${JSON.stringify(TEMP_FILE_MODULE)});`,
    `const { openSync, writeSync } = await import("node:fs");`,
    `const temp = tempPathFor(${JSON.stringify(path)}, ${JSON.stringify(tempDir)});`,
    `writeSync(openSync(temp, "w"), Buffer.alloc(4096, 1));`,
    `process.stdout.write(temp + "\\n");`,
    "setInterval(() => {}, 1 << 30);",
  ].join("\n");
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tempPath = await new Promise<string>((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (stdout.endsWith("\n")) resolve(stdout.trim());
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.once("exit", (code) => reject(new Error(`the writer exited with ${code}: ${stderr}`)));
  });
  return {
    child,
    tempPath,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
  };
}
