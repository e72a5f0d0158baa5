#!/usr/bin/env node
import module from "node:module";
import { setFlagsFromString } from "node:v8";
import { processIo } from "./cli-io.js";
import { runCli } from "./program.js";

// The embedded database is Postgres compiled to WebAssembly. V8 first runs it as quickly compiled
// code and recompiles the functions that turn hot with its optimizing compiler, on the process's
// other threads; opening the database makes hundreds of functions hot, and a command that runs a
// few queries pays that compilation for nothing (a third of its CPU time). A larger budget leaves
// functions on the first tier until they have run 30 times as long: a long run still gets its hot
// functions optimized, and runs as fast. V8 versions without the flag (checked by major version,
// so that none prints "unrecognized flag") keep their default.
const V8_MAJOR = Number(process.versions.v8.split(".")[0]);
if (V8_MAJOR >= 10 && V8_MAJOR <= 13) setFlagsFromString("--wasm-tiering-budget=60000000");

// Node 22.1 and later keep the compiled code of the modules a command loads (strata's, kysely's,
// Arrow's...) for the next command; older versions have no such cache.
(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();

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
