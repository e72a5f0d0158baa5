/**
 * The document analysis pipeline: a strata project in one file.
 *
 * Five assets, in three groups (`strata lineage` prints their graph):
 *
 * - `raw_documents` reads ~300 support tickets, research abstracts and product reviews from
 *   `data/documents.csv`.
 * - `document_chunks` splits long documents into chunks of at most 1,500 characters.
 * - `analyses` sends every chunk to a model through `ctx.infer`: short chunks to a small, cheap
 *   model and long ones to a large model, which is also the small one's fallback.
 * - `document_summaries` joins each document's chunk analyses back into one row per document.
 * - `inference_costs` is the cost per model per document, built from the analyses rows.
 *
 * Run it against the simulated endpoint (no GPU, no network, no Postgres server needed):
 *
 *   npx strata sim --port 8000 &
 *   npx strata materialize --select '*'
 *   npx strata costs --by model
 *
 * Every answer is recorded in the ledger (`strata.inference_calls`), so materializing again costs
 * nothing: identical requests are answered from the ledger's cache.
 */
import { asset, defineProject } from "strata";
import { readCsv } from "./lib/read-csv.js";
import { splitIntoChunks } from "./lib/split-into-chunks.js";
import { sumUsd } from "./lib/sum-usd.js";

/** The longest chunk, in characters: small enough for a focused prompt, large enough for context. */
const MAX_CHUNK_CHARS = 1_500;

/** Chunks up to this many characters go to the small model; longer ones to the large model. */
const SMALL_MODEL_MAX_CHARS = 700;

// ── ingest ────────────────────────────────────────────────────────────────────────────────────

/** One source document, as the CSV holds it. */
interface Document {
  id: string;
  title: string;
  body: string;
  source: string;
}

export const rawDocuments = asset({
  key: "raw_documents",
  group: "ingest",
  description:
    "Support tickets, research abstracts and product reviews, read from data/documents.csv",
  owners: ["team:data-platform"],
  kinds: ["csv"],
  // Bump a codeVersion when the code changes what the asset produces: strata then reports this
  // asset and everything downstream as stale (`strata list`).
  codeVersion: "1",
  compute: async (ctx): Promise<Document[]> => {
    // Resolved against this file, so the project works from any working directory.
    const rows = await readCsv(new URL("./data/documents.csv", import.meta.url));
    const documents = rows.map((r) => ({
      id: r.id ?? "",
      title: r.title ?? "",
      body: r.body ?? "",
      source: r.source ?? "",
    }));
    // Metadata is stored with this materialization (`strata.materializations.metadata`).
    ctx.metadata({ documents: documents.length, file: "data/documents.csv" });
    return documents;
  },
});

/** A piece of a document short enough for one model call. */
interface DocumentChunk {
  chunk_id: string;
  document_id: string;
  chunk_index: number;
  title: string;
  source: string;
  text: string;
}

export const documentChunks = asset({
  key: "document_chunks",
  group: "ingest",
  description: `Documents split into chunks of at most ${MAX_CHUNK_CHARS} characters on paragraph and sentence boundaries`,
  owners: ["team:data-platform"],
  codeVersion: "1",
  // `deps` is typed: `documents` below is Document[], the rows `rawDocuments` returns.
  deps: { documents: rawDocuments },
  compute: async (ctx, { documents }): Promise<DocumentChunk[]> => {
    const chunks = documents.flatMap((doc) =>
      splitIntoChunks(doc.body, MAX_CHUNK_CHARS).map((text, i) => ({
        chunk_id: `${doc.id}#${i}`,
        document_id: doc.id,
        chunk_index: i,
        title: doc.title,
        source: doc.source,
        text,
      })),
    );
    ctx.log.info(`${documents.length} documents → ${chunks.length} chunks`);
    return chunks;
  },
});

// ── nlp ───────────────────────────────────────────────────────────────────────────────────────

const SYSTEM_PROMPT =
  "You analyze business documents. For the text you are given, reply with one sentence " +
  "summarizing it, then its sentiment (positive, neutral or negative), then up to three topics.";

/** The chat messages for one chunk; the same chunk always yields the same request (cacheable). */
function analysisMessages(chunk: DocumentChunk) {
  return [
    { role: "system", content: SYSTEM_PROMPT },
    {
      role: "user",
      content: `Source: ${chunk.source}\nTitle: ${chunk.title}\n\n${chunk.text}`,
    },
  ] as const;
}

export const analyses = asset({
  key: "analyses",
  group: "nlp",
  description:
    "One model analysis per chunk: short chunks on the small model, long ones on the large",
  owners: ["team:nlp"],
  kinds: ["openai"],
  codeVersion: "1",
  deps: { chunks: documentChunks },
  compute: async (ctx, { chunks }) => {
    const short = chunks.filter((c) => c.text.length <= SMALL_MODEL_MAX_CHARS);
    const long = chunks.filter((c) => c.text.length > SMALL_MODEL_MAX_CHARS);
    ctx.metadata({ small_model_chunks: short.length, large_model_chunks: long.length });

    // Two fan-outs, one per model, running at once; each endpoint's maxConcurrency bounds the
    // calls in flight. Every call is checkpointed and priced in the ledger as it is answered, so
    // a killed run resumes (`strata runs resume ID`) without paying twice.
    const [smallResults, largeResults] = await Promise.all([
      ctx.infer(short, {
        model: "small",
        // Tried when the small model fails for good on a chunk (after its retries).
        fallback: ["large"],
        // The id ties each ledger row (`strata.inference_calls.document_id`) to this chunk.
        id: (chunk) => chunk.chunk_id,
        messages: analysisMessages,
        // temperature 0: the same request means the same answer, which makes the cache sound.
        params: { max_tokens: 128, temperature: 0 },
        // Tolerate a few chunks failing on both models rather than failing the whole asset.
        maxFailures: 3,
      }),
      ctx.infer(long, {
        model: "large",
        id: (chunk) => chunk.chunk_id,
        messages: analysisMessages,
        params: { max_tokens: 256, temperature: 0 },
        maxFailures: 3,
      }),
    ]);

    // ctx.infer returns one row per input, in input order: join them back to their chunks.
    const answered = [...zip(short, smallResults), ...zip(long, largeResults)];
    return answered.map(([chunk, result]) => ({
      chunk_id: chunk.chunk_id,
      document_id: chunk.document_id,
      chunk_index: chunk.chunk_index,
      // The model key that answered: "large" where the fallback stepped in.
      model: result.model,
      status: result.status,
      error: result.error,
      // The simulator answers with text that begins with "[simulated]"; a real model's answer
      // could be parsed into fields here with `parse: (text) => ...` on the ctx.infer call.
      analysis: result.output,
      prompt_tokens: result.prompt_tokens,
      cached_tokens: result.cached_tokens,
      completion_tokens: result.completion_tokens,
      // An exact decimal string; a chunk answered from the cache costs "0".
      cost_usd: result.cost_usd,
    }));
  },
});

function zip<A, B>(as: ReadonlyArray<A>, bs: ReadonlyArray<B>): [A, B][] {
  return as.map((a, i) => [a, bs[i] as B]);
}

// ── reporting ─────────────────────────────────────────────────────────────────────────────────

export const documentSummaries = asset({
  key: "document_summaries",
  group: "reporting",
  description: "One row per document: its chunks' analyses joined in order, with tokens and cost",
  owners: ["team:nlp"],
  codeVersion: "1",
  deps: { documents: rawDocuments, analyses },
  compute: async (_ctx, { documents, analyses }) => {
    const byDocument = groupBy(analyses, (a) => a.document_id);
    return documents.map((doc) => {
      const parts = (byDocument.get(doc.id) ?? []).sort((a, b) => a.chunk_index - b.chunk_index);
      return {
        document_id: doc.id,
        title: doc.title,
        source: doc.source,
        chunks: parts.length,
        failed_chunks: parts.filter((p) => p.status === "failed").length,
        models: [...new Set(parts.map((p) => p.model ?? "none"))].sort().join(","),
        summary: parts.map((p) => p.analysis ?? "(no analysis)").join("\n"),
        prompt_tokens: sum(parts.map((p) => p.prompt_tokens)),
        completion_tokens: sum(parts.map((p) => p.completion_tokens)),
        cost_usd: sumUsd(parts.map((p) => p.cost_usd)),
      };
    });
  },
});

export const inferenceCosts = asset({
  key: "inference_costs",
  group: "reporting",
  description: "Cost per model per document, from the analyses rows",
  owners: ["team:finance"],
  codeVersion: "1",
  deps: { analyses },
  // The ledger table `strata.inference_calls` holds the same numbers, one row per call (with the
  // prices snapshotted on each row), and `strata costs --by document` aggregates them. This asset
  // makes them a dataset of its own, stored with the others as Arrow, for downstream reports.
  // On a run answered from the cache the numbers are zero: that run was billed nothing.
  compute: async (_ctx, { analyses }) => {
    const groups = groupBy(analyses, (a) => `${a.document_id}\u0000${a.model ?? "none"}`);
    return [...groups.values()].map((rows) => {
      const first = rows[0]!;
      return {
        document_id: first.document_id,
        model: first.model ?? "none",
        calls: rows.length,
        prompt_tokens: sum(rows.map((r) => r.prompt_tokens)),
        cached_tokens: sum(rows.map((r) => r.cached_tokens)),
        completion_tokens: sum(rows.map((r) => r.completion_tokens)),
        // Summed as exact decimals: money is never a float.
        cost_usd: sumUsd(rows.map((r) => r.cost_usd)),
      };
    });
  },
});

function groupBy<T>(rows: ReadonlyArray<T>, key: (row: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [row]);
    else group.push(row);
  }
  return groups;
}

function sum(values: ReadonlyArray<number>): number {
  return values.reduce((a, b) => a + b, 0);
}

// ── the project ───────────────────────────────────────────────────────────────────────────────

export default defineProject({
  name: "document-analysis",
  assets: [rawDocuments, documentChunks, analyses, documentSummaries, inferenceCosts],
  endpoints: {
    // Any OpenAI-compatible server: vLLM, SGLang, a hosted API, or `strata sim` for offline runs.
    // The API key is read from OPENAI_API_KEY (set `apiKeyEnv` to use another variable) and never
    // stored; the simulator accepts any key.
    local: {
      baseURL: process.env.STRATA_ENDPOINT_URL || "http://127.0.0.1:8000/v1",
      maxConcurrency: 32,
    },
  },
  models: {
    // Assets name models by key; `name` is what the endpoint serves. Prices are USD per million
    // tokens and are snapshotted onto every ledger row, so changing them never rewrites history.
    small: {
      endpoint: "local",
      name: "qwen3-8b",
      price: { inputPerMTok: 0.1, cachedInputPerMTok: 0.01, outputPerMTok: 0.4 },
    },
    large: {
      endpoint: "local",
      name: "qwen3-32b",
      price: { inputPerMTok: 0.5, cachedInputPerMTok: 0.05, outputPerMTok: 2 },
    },
  },
});
