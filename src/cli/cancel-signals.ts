import { EXIT_CANCELED } from "./exit-codes.js";

/**
 * Turns the first Ctrl-C (SIGINT) or SIGTERM into a cancel of the run, and a second one into
 * an immediate exit (the run row is then fixed up as `failed` by the next command that finds
 * its process gone). `say` prints the notice; `exiting` is true right before the process exits,
 * so live output can be cleared first.
 */
export function onCancelSignals(say: (message: string, exiting: boolean) => void): {
  readonly signal: AbortSignal;
  dispose(): void;
} {
  const controller = new AbortController();
  const handler = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      say(`strata: ${name} again; exiting now`, true);
      process.exit(EXIT_CANCELED);
    }
    say(`strata: ${name} received; canceling the run (again to exit at once)`, false);
    controller.abort(new Error(`canceled by ${name}`));
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.removeListener("SIGINT", handler);
      process.removeListener("SIGTERM", handler);
    },
  };
}
