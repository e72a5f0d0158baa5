#!/usr/bin/env node
import { processIo } from "./cli-io.js";
import { runCli } from "./program.js";

// A reader that closed the pipe early (`strata runs | head`) is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(0);
    throw error;
  });
}
const code = await runCli(process.argv.slice(2), processIo());
// Exit explicitly: user code that ignored a cancel (a compute still sleeping past the grace
// period) must not keep the CLI alive once the run is recorded. Flush output first.
const flush = (stream: NodeJS.WritableStream) =>
  new Promise<void>((resolve) => stream.write("", () => resolve()));
await Promise.all([flush(process.stdout), flush(process.stderr)]);
process.exit(code);
