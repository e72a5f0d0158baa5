import type { Command } from "commander";
import { StrataError } from "../../errors.js";
import { startSimulator } from "../../sim/simulator.js";
import type { SimulatorOptions } from "../../sim/simulator-options.js";
import type { CliContext } from "../cli-context.js";
import { writeLine } from "../cli-io.js";
import type { CommandRunner } from "../program.js";

interface SimCliOptions {
  host: string;
  port: string;
  seed?: string;
  latencyMs?: string;
  perTokenLatencyMs?: string;
  jitterMs?: string;
  errorRate?: string;
  rateLimitRpm?: string;
  quotaExhausted?: boolean;
  timeoutRate?: string;
  malformedRate?: string;
  models?: string;
  contextWindow?: string;
  maxOutputTokens?: string;
  apiKeyEnv?: string;
  json?: boolean;
}

/** `strata sim [--port N] [--latency-ms N] [--error-rate F] ...` */
export function registerSimCommand(program: Command, run: CommandRunner): void {
  program
    .command("sim")
    .description(
      "run a SIMULATED OpenAI-compatible endpoint for offline demos, tests and benchmarks",
    )
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0 picks a free one)", "8000")
    .option("--seed <n>", "seed of the simulated text and faults")
    .option("--latency-ms <n>", "fixed latency of every completion")
    .option("--per-token-latency-ms <n>", "added latency per output token")
    .option("--jitter-ms <n>", "random extra latency up to this much")
    .option("--error-rate <f>", "share of requests answered with a 500")
    .option("--rate-limit-rpm <n>", "requests per minute before 429s")
    .option("--quota-exhausted", "answer every completion with 429 insufficient_quota")
    .option("--timeout-rate <f>", "share of requests never answered")
    .option("--malformed-rate <f>", "share of requests answered with a body that is not JSON")
    .option("--models <names>", "comma-separated model names to serve (default: any)")
    .option("--context-window <n>", "longest prompt in tokens before a 400")
    .option("--max-output-tokens <n>", "longest natural completion in tokens")
    .option("--api-key-env <name>", "require the key held by this env var as a bearer token")
    .option("--json", "print the endpoint as JSON when ready")
    .action((options: SimCliOptions) =>
      run(async (ctx: CliContext) => {
        const simOptions: SimulatorOptions = {
          host: options.host,
          port: number(options.port, "--port"),
          seed: optionalNumber(options.seed, "--seed"),
          latencyMs: optionalNumber(options.latencyMs, "--latency-ms", MAX_TIMER_MS),
          perTokenLatencyMs: optionalNumber(
            options.perTokenLatencyMs,
            "--per-token-latency-ms",
            MAX_TIMER_MS,
          ),
          jitterMs: optionalNumber(options.jitterMs, "--jitter-ms", MAX_TIMER_MS),
          errorRate: optionalNumber(options.errorRate, "--error-rate"),
          rateLimitRpm: optionalNumber(options.rateLimitRpm, "--rate-limit-rpm"),
          quotaExhausted: options.quotaExhausted === true,
          timeoutRate: optionalNumber(options.timeoutRate, "--timeout-rate"),
          malformedRate: optionalNumber(options.malformedRate, "--malformed-rate"),
          contextWindow: optionalNumber(options.contextWindow, "--context-window"),
          maxOutputTokens: optionalNumber(options.maxOutputTokens, "--max-output-tokens"),
          ...(options.models !== undefined
            ? {
                models: options.models
                  .split(",")
                  .map((m) => m.trim())
                  .filter(Boolean),
              }
            : {}),
          ...(options.apiKeyEnv !== undefined
            ? { apiKey: requiredEnv(ctx, options.apiKeyEnv) }
            : {}),
        };
        let sim: Awaited<ReturnType<typeof startSimulator>>;
        try {
          sim = await startSimulator(simOptions);
        } catch (error) {
          throw new StrataError(
            "bad_usage",
            `cannot start the simulator: ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
        if (options.json) {
          writeLine(
            ctx.io.stdout,
            JSON.stringify({ simulated: true, url: sim.url, ledger: `${sim.origin}/ledger` }),
          );
        } else {
          writeLine(
            ctx.io.stdout,
            `strata sim: SIMULATED OpenAI-compatible endpoint at ${sim.url}`,
          );
          writeLine(ctx.io.stdout, `  its bill: ${sim.origin}/ledger; Ctrl-C to stop`);
        }
        await new Promise<void>((resolve) => {
          const stop = () => {
            process.removeListener("SIGINT", stop);
            process.removeListener("SIGTERM", stop);
            resolve();
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
        });
        await sim.close();
      }),
    );
}

// The longest delay a timer holds; Node turns a longer one into 1 ms with a warning.
const MAX_TIMER_MS = 2_147_483_647;

function number(value: string, option: string, max = Number.MAX_VALUE): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new StrataError("bad_usage", `${option} must be a non-negative number, not "${value}"`);
  }
  if (n > max) {
    throw new StrataError("bad_usage", `${option} must be at most ${max}, not "${value}"`);
  }
  return n;
}

function optionalNumber(
  value: string | undefined,
  option: string,
  max?: number,
): number | undefined {
  return value === undefined ? undefined : number(value, option, max);
}

function requiredEnv(ctx: CliContext, name: string): string {
  const value = ctx.io.env[name];
  if (value === undefined || value === "") {
    throw new StrataError("bad_usage", `--api-key-env names "${name}", which is not set`);
  }
  return value;
}
