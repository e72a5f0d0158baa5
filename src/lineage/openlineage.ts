import { createHash } from "node:crypto";
import type { AssetDefinition } from "../assets/asset-definition.js";
import type { AssetKey } from "../assets/asset-key.js";
import { StrataError } from "../errors.js";
import type { AssetGraph } from "./asset-graph.js";
import { lineageSubgraph } from "./lineage-subgraph.js";

/**
 * The `$id` of the OpenLineage core schema the events follow (spec 2-0-2).
 *
 * @example
 * event.schemaURL === `${OPENLINEAGE_SCHEMA}#/$defs/RunEvent`; // true
 */
export const OPENLINEAGE_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json";

/**
 * The `producer` of strata's events when the caller names none.
 *
 * @example
 * lineageToOpenLineage(graph, keys, { projectName: "docs", producer: DEFAULT_OPENLINEAGE_PRODUCER });
 */
export const DEFAULT_OPENLINEAGE_PRODUCER = "https://github.com/strata/strata";

const FACETS = "https://openlineage.io/spec/facets";
const FACET_SCHEMAS = {
  jobType: `${FACETS}/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet`,
  jobDocumentation: `${FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet`,
  jobOwnership: `${FACETS}/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet`,
  jobTags: `${FACETS}/1-0-0/TagsJobFacet.json#/$defs/TagsJobFacet`,
  datasetDocumentation: `${FACETS}/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet`,
  datasetOwnership: `${FACETS}/1-0-1/OwnershipDatasetFacet.json#/$defs/OwnershipDatasetFacet`,
  datasetTags: `${FACETS}/1-0-0/TagsDatasetFacet.json#/$defs/TagsDatasetFacet`,
} as const;

// RFC 4122's namespace for names that are URLs: run ids are UUIDv5 of `strata://<project>/<key>`.
const URL_NAMESPACE = "6ba7b811-9dad-11d1-80b4-00c04fd430c8";

/**
 * Options of {@link lineageToOpenLineage}.
 *
 * @example
 * const options: OpenLineageOptions = { projectName: "docs", eventTime: "2026-01-01T00:00:00Z" };
 */
export interface OpenLineageOptions {
  /** Names the namespace of every job and dataset: `strata://<projectName>`. */
  readonly projectName: string;
  /** A URI naming what produced the events; {@link DEFAULT_OPENLINEAGE_PRODUCER} by default. */
  readonly producer?: string;
  /** The events' `eventTime`; the current time by default. Pass it for reproducible exports. */
  readonly eventTime?: Date | string;
}

/**
 * A facet: the base fields every OpenLineage facet carries, plus its own.
 *
 * @example
 * const docs = event.job.facets.documentation; // { _producer, _schemaURL, description }
 */
export interface OpenLineageFacet {
  readonly _producer: string;
  readonly _schemaURL: string;
  readonly [field: string]: unknown;
}

/**
 * An OpenLineage dataset: one strata asset, named by its key in the project's namespace.
 *
 * @example
 * const dataset: OpenLineageDataset = { namespace: "strata://docs", name: "raw/documents" };
 */
export interface OpenLineageDataset {
  readonly namespace: string;
  readonly name: AssetKey;
  readonly facets?: Readonly<Record<string, OpenLineageFacet>>;
}

/**
 * An OpenLineage job: the compute of one strata asset, named by the asset's key.
 *
 * @example
 * event.job.name; // "analyses"
 */
export interface OpenLineageJob {
  readonly namespace: string;
  readonly name: AssetKey;
  readonly facets: Readonly<Record<string, OpenLineageFacet>>;
}

/**
 * An OpenLineage `RunEvent` (spec 2-0-2), as {@link lineageToOpenLineage} emits one per asset.
 *
 * @example
 * const event: OpenLineageRunEvent = lineageToOpenLineage(graph, ["analyses"], { projectName: "docs" })[0]!;
 */
export interface OpenLineageRunEvent {
  readonly eventType: "COMPLETE";
  readonly eventTime: string;
  readonly producer: string;
  readonly schemaURL: string;
  readonly run: { readonly runId: string };
  readonly job: OpenLineageJob;
  readonly inputs: ReadonlyArray<OpenLineageDataset>;
  readonly outputs: ReadonlyArray<OpenLineageDataset>;
}

/**
 * Exports the lineage of the selected `keys` as OpenLineage run events, one per asset.
 *
 * Each asset is a job (its compute) that reads its deps and writes one dataset, the asset
 * itself; jobs and datasets share the namespace `strata://<projectName>` and are named by asset
 * key, so the dataset one event writes is the dataset another event reads. `inputs` are all the
 * asset's declared deps, selected or not, as in the JSON export.
 *
 * The events describe the declared graph, not an observed run. They are `COMPLETE` run events,
 * the form every OpenLineage consumer ingests, rather than the spec's newer static `JobEvent`. Its
 * `runId` is a UUIDv5 of `strata://<projectName>/<key>` (and the code version, when the asset
 * has one), so exporting the same project twice gives the same ids and a consumer upserts rather
 * than duplicates. Jobs carry the `jobType` facet (`BATCH`, integration `STRATA`, job type
 * `ASSET`) and, where the asset declares them, `documentation`, `ownership` and `tags` facets;
 * the output dataset carries the dataset forms of the last three. Events come in topological
 * order (deps first). Every event validates against the OpenLineage schema and its facets'.
 *
 * Throws a `bad_usage` error for an empty project name, a producer that is not an absolute URI
 * or an invalid event time, and a `bad_selection` error for a key that is not in the graph.
 *
 * @example
 * const events = lineageToOpenLineage(graph, graph.keys(), { projectName: "docs" });
 * for (const event of events) await fetch(url, { method: "POST", body: JSON.stringify(event) });
 */
export function lineageToOpenLineage(
  graph: AssetGraph,
  keys: Iterable<AssetKey>,
  options: OpenLineageOptions,
): OpenLineageRunEvent[] {
  const namespace = openLineageNamespace(options.projectName);
  const producer = checkProducer(options.producer ?? DEFAULT_OPENLINEAGE_PRODUCER);
  const eventTime = checkEventTime(options.eventTime ?? new Date());
  const sub = lineageSubgraph(graph, keys);
  const schemaURL = `${OPENLINEAGE_SCHEMA}#/$defs/RunEvent`;
  const facet = (schema: string, fields: Record<string, unknown>): OpenLineageFacet => ({
    _producer: producer,
    _schemaURL: schema,
    ...fields,
  });
  const order =
    sub.keys.length === graph.size ? graph.toposort() : graph.toposort().filter(sub.has);
  return order.map((key): OpenLineageRunEvent => {
    const a = graph.get(key);
    const jobFacets: Record<string, OpenLineageFacet> = {
      jobType: facet(FACET_SCHEMAS.jobType, {
        processingType: "BATCH",
        integration: "STRATA",
        jobType: "ASSET",
      }),
    };
    const datasetFacets: Record<string, OpenLineageFacet> = {};
    if (a.description !== null && a.description !== "") {
      jobFacets.documentation = facet(FACET_SCHEMAS.jobDocumentation, {
        description: a.description,
      });
      datasetFacets.documentation = facet(FACET_SCHEMAS.datasetDocumentation, {
        description: a.description,
      });
    }
    if (a.owners.length > 0) {
      const owners = a.owners.map((name) => ({ name }));
      jobFacets.ownership = facet(FACET_SCHEMAS.jobOwnership, { owners });
      datasetFacets.ownership = facet(FACET_SCHEMAS.datasetOwnership, { owners });
    }
    const tags = tagList(a);
    if (tags.length > 0) {
      jobFacets.tags = facet(FACET_SCHEMAS.jobTags, { tags });
      datasetFacets.tags = facet(FACET_SCHEMAS.datasetTags, { tags });
    }
    const output: OpenLineageDataset =
      Object.keys(datasetFacets).length > 0
        ? { namespace, name: key, facets: datasetFacets }
        : { namespace, name: key };
    return {
      eventType: "COMPLETE",
      eventTime,
      producer,
      schemaURL,
      run: { runId: runIdOf(namespace, a) },
      job: { namespace, name: key, facets: jobFacets },
      inputs: graph.parents(key).map((dep) => ({ namespace, name: dep })),
      outputs: [output],
    };
  });
}

/**
 * The OpenLineage namespace of a project's jobs and datasets: `strata://<projectName>`.
 *
 * @example
 * openLineageNamespace("docs"); // "strata://docs"
 */
export function openLineageNamespace(projectName: string): string {
  if (typeof projectName !== "string" || projectName.trim() === "") {
    throw new StrataError(
      "bad_usage",
      "an OpenLineage export needs a project name; pass { projectName: ... }",
    );
  }
  return `strata://${projectName}`;
}

function checkProducer(producer: string): string {
  // The schema's "uri" format wants an absolute URI with a scheme.
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/.test(producer) || !URL.canParse(producer)) {
    throw new StrataError(
      "bad_usage",
      `OpenLineage producer "${producer}" is not an absolute URI; use one such as "${DEFAULT_OPENLINEAGE_PRODUCER}"`,
    );
  }
  return producer;
}

function checkEventTime(time: Date | string): string {
  const ms = time instanceof Date ? time.getTime() : Date.parse(time);
  if (Number.isNaN(ms)) {
    throw new StrataError(
      "bad_usage",
      `OpenLineage event time "${String(time)}" is not a date; use an ISO timestamp such as "2026-01-01T00:00:00Z"`,
    );
  }
  return new Date(ms).toISOString();
}

function tagList(a: AssetDefinition<object>): { key: string; value: string; source: string }[] {
  return Object.keys(a.tags)
    .sort()
    .map((key) => ({ key, value: a.tags[key] ?? "", source: "STRATA" }));
}

function runIdOf(namespace: string, a: AssetDefinition<object>): string {
  const version = a.codeVersion === null ? "" : `?codeVersion=${encodeURIComponent(a.codeVersion)}`;
  return uuidV5(URL_NAMESPACE, `${namespace}/${a.key}${version}`);
}

// A name-based UUID (RFC 4122 version 5): SHA-1 of the namespace's bytes and the name.
function uuidV5(namespace: string, name: string): string {
  const hash = createHash("sha1")
    .update(Buffer.from(namespace.replace(/-/g, ""), "hex"))
    .update(name, "utf8")
    .digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
