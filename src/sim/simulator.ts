import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { CompletionHandler } from "./completion-handler.js";
import { DeterministicText } from "./deterministic-text.js";
import { sendError, sendJson } from "./send-json.js";
import { SimHttpError } from "./sim-http-error.js";
import type { SimLedgerSnapshot } from "./sim-ledger.js";
import { SimLedger } from "./sim-ledger.js";
import { SimTokenizer } from "./sim-tokenizer.js";
import type {
  ResolvedSimulatorOptions,
  SimulatorOptions,
  SimulatorRuntimeOptions,
} from "./simulator-options.js";
import { resolveSimulatorOptions } from "./simulator-options.js";

/**
 * The models `GET /v1/models` lists when no `models` option restricts them (with any other
 * model name asked for so far: every name is served).
 *
 * @example
 * DEFAULT_SIM_MODELS.includes("strata-sim-small"); // true
 */
export const DEFAULT_SIM_MODELS: ReadonlyArray<string> = Object.freeze([
  "strata-sim-small",
  "strata-sim-large",
]);

/** Seconds since the epoch at which the simulated models were "created". */
const MODELS_CREATED = 1_700_000_000;

/**
 * A running simulated endpoint, as {@link startSimulator} returns it.
 *
 * @example
 * const sim = await startSimulator({ port: 0 });
 * const client = new OpenAI({ baseURL: sim.url, apiKey: "sim", maxRetries: 0 });
 * await sim.close();
 */
export interface Simulator {
  /** The OpenAI base URL, `http://HOST:PORT/v1`. */
  readonly url: string;
  /** `http://HOST:PORT`, where `/ledger` and `/health` live. */
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  /** The options in force. */
  options(): ResolvedSimulatorOptions;
  /** The bill: tokens per model, totals and request outcomes (what `GET /ledger` returns). */
  ledger(): SimLedgerSnapshot;
  /** Zeroes the bill (what `POST /ledger/reset` does); the prefix cache is kept. */
  resetLedger(): void;
  /** Changes options live, e.g. fault rates; `host`, `port` and `prefixCache` are fixed. */
  setOptions(options: SimulatorRuntimeOptions): void;
  /** Holds new completion requests unanswered until {@link Simulator.resume}. */
  pause(): void;
  /** Answers the held requests and new ones again. */
  resume(): void;
  /** Stops listening and destroys every open socket, also those of unanswered requests. */
  close(): Promise<void>;
}

/**
 * Starts an OpenAI-compatible simulated endpoint on node's `http` server.
 *
 * It serves `POST /v1/chat/completions` (plain and streamed, with `stream_options.include_usage`),
 * `GET /v1/models`, `GET /v1/models/:id`, `GET /ledger`, `POST /ledger/reset` and `GET /health`.
 * Completions are deterministic for a seed and a prompt, begin with `[simulated]`, and report
 * usage counted with the o200k_base tokenizer, including `prompt_tokens_details.cached_tokens`
 * when a prompt shares at least 1,024 tokens of prefix with an earlier one. Faults (500s, 429s,
 * quota, unanswered requests, malformed bodies) are injected at the configured rates from a
 * seeded generator. The simulator bills only completions it delivered in full; see
 * {@link SimLedger} for the rules.
 *
 * @example
 * const sim = await startSimulator({ port: 0, latencyMs: 0, errorRate: 0.05 });
 * const client = new OpenAI({ baseURL: sim.url, apiKey: "sim", maxRetries: 0 });
 * await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "hi" }] });
 * sim.ledger().totals.calls; // 1
 * await sim.close();
 */
export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const resolved = resolveSimulatorOptions(options);
  const tokenizer = await SimTokenizer.load();
  const simulator = new SimulatorServer(resolved, tokenizer);
  await simulator.listen();
  return simulator;
}

class SimulatorServer implements Simulator {
  readonly #server: Server;
  readonly #ledger = new SimLedger();
  readonly #handler: CompletionHandler;
  #options: ResolvedSimulatorOptions;
  #held: Array<() => void> | undefined;
  #closed = false;

  constructor(options: ResolvedSimulatorOptions, tokenizer: SimTokenizer) {
    this.#options = options;
    this.#handler = new CompletionHandler({
      tokenizer,
      text: new DeterministicText(tokenizer),
      ledger: this.#ledger,
      options,
    });
    this.#server = createServer({ keepAlive: true, noDelay: true }, (req, res) =>
      this.#route(req, res),
    );
    // keep idle client connections longer than clients' pools do, and never cut a slow answer
    this.#server.keepAliveTimeout = 65_000;
    this.#server.headersTimeout = 66_000;
    this.#server.requestTimeout = 0;
    this.#server.maxHeadersCount = 100;
  }

  get host(): string {
    return this.#options.host;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get origin(): string {
    const host = this.host.includes(":") ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}`;
  }

  get url(): string {
    return `${this.origin}/v1`;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off("error", reject);
        resolve();
      });
    });
  }

  options(): ResolvedSimulatorOptions {
    return this.#options;
  }

  ledger(): SimLedgerSnapshot {
    return this.#ledger.snapshot();
  }

  resetLedger(): void {
    this.#ledger.reset();
  }

  setOptions(options: SimulatorRuntimeOptions): void {
    const {
      host: _host,
      port: _port,
      prefixCache: _cache,
      ...runtime
    } = options as SimulatorOptions;
    this.#options = resolveSimulatorOptions(runtime, this.#options);
    this.#handler.setOptions(this.#options);
  }

  pause(): void {
    this.#held ??= [];
  }

  resume(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const release of held) release();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#held = undefined;
    this.#handler.cancelAll();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  #route(req: IncomingMessage, res: ServerResponse): void {
    req.on("error", () => res.destroy());
    const url = req.url ?? "/";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    const method = req.method ?? "GET";
    const route = (allowed: string, answer: () => void): void => {
      if (method === allowed) answer();
      else sendError(res, SimHttpError.methodNotAllowed(allowed), { allow: allowed });
    };

    if (path === "/v1/chat/completions" || path === "/chat/completions") {
      route("POST", () => this.#readBody(req, res, (body) => this.#complete(req, res, body)));
    } else if (path === "/v1/models" || path === "/models") {
      route("GET", () =>
        sendJson(res, 200, { object: "list", data: this.#models().map(modelJson) }),
      );
    } else if (path.startsWith("/v1/models/")) {
      route("GET", () => this.#model(res, decodeURIComponent(path.slice("/v1/models/".length))));
    } else if (path === "/ledger" || path === "/v1/ledger") {
      route("GET", () => sendJson(res, 200, this.#ledger.snapshot()));
    } else if (path === "/ledger/reset" || path === "/v1/ledger/reset") {
      route("POST", () => {
        this.#ledger.reset();
        sendJson(res, 200, this.#ledger.snapshot());
      });
    } else if (path === "/health") {
      sendJson(res, 200, { status: "ok", simulated: true });
    } else {
      sendError(res, SimHttpError.unknownUrl(method, path));
    }
  }

  #complete(req: IncomingMessage, res: ServerResponse, body: string): void {
    const answer = (): void => {
      if (res.destroyed) return;
      try {
        this.#handler.handle(req, res, body);
      } catch (error) {
        // a defect in the simulator must not take the server down with it
        console.error("strata-sim: internal error", error);
        sendError(
          res,
          new SimHttpError(500, `internal simulator error: ${String(error)}`, {
            type: "server_error",
          }),
        );
      }
    };
    if (this.#held === undefined) answer();
    else this.#held.push(answer);
  }

  #model(res: ServerResponse, id: string): void {
    const served = this.#options.models;
    if (served !== undefined && !served.includes(id)) {
      sendError(res, SimHttpError.modelNotFound(id, served));
    } else {
      sendJson(res, 200, modelJson(id));
    }
  }

  #models(): ReadonlyArray<string> {
    if (this.#options.models !== undefined) return this.#options.models;
    return [...new Set([...DEFAULT_SIM_MODELS, ...this.#handler.seenModels()])];
  }

  #readBody(req: IncomingMessage, res: ServerResponse, then: (body: string) => void): void {
    const limit = this.#options.maxBodyBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        sendError(
          res,
          new SimHttpError(413, `Request body is larger than ${limit} bytes. (simulated)`),
          {
            connection: "close",
          },
        );
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > limit) return;
      then(
        chunks.length === 1
          ? (chunks[0] as Buffer).toString("utf8")
          : Buffer.concat(chunks).toString("utf8"),
      );
    });
  }
}

function modelJson(id: string): { id: string; object: "model"; created: number; owned_by: string } {
  return { id, object: "model", created: MODELS_CREATED, owned_by: "strata-sim" };
}
