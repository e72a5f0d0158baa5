import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { asset } from "../../src/assets/asset-definition.js";
import { StrataError } from "../../src/errors.js";
import { AssetGraph } from "../../src/lineage/asset-graph.js";
import {
  lineageToOpenLineage,
  OPENLINEAGE_SCHEMA,
  type OpenLineageRunEvent,
} from "../../src/lineage/openlineage.js";
import { OPENLINEAGE_SPEC_DIR as SPEC_DIR } from "../helpers/openlineage-spec.js";
import { REPO_ROOT } from "../helpers/project-fixture.js";

const rows = () => [{ id: "1" }];
const EVENT_TIME = "2026-01-02T03:04:05.000Z";

// raw/documents → analyses, summaries → report: a diamond, with metadata on some assets.
function diamond(): AssetGraph {
  const documents = asset({
    key: "raw/documents",
    group: "ingest",
    description: "Source documents",
    tags: { team: "nlp", tier: "" },
    owners: ["team:nlp", "user:ada"],
    codeVersion: "1",
    compute: rows,
  });
  const analyses = asset({ key: "analyses", deps: { documents }, codeVersion: "2", compute: rows });
  const summaries = asset({ key: "summaries", group: "llm", deps: { documents }, compute: rows });
  const report = asset({ key: "report", deps: { analyses, summaries }, compute: rows });
  return AssetGraph.fromAssets([documents, analyses, summaries, report]);
}

type Validate = (value: unknown) => string[];

/** Ajv with the core schema and every facet schema, registered by their `$id`. */
function specValidator(): { event: Validate; facet: (schemaURL: string) => Validate } {
  // Not strict: the spec's schemas use a non-standard "example" keyword and `required` inside
  // `not`, which Ajv's strict mode refuses although they are valid JSON Schema.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as { $id: string };
  ajv.addSchema(read(path.join(SPEC_DIR, "OpenLineage.json")));
  const facetDir = path.join(SPEC_DIR, "facets");
  for (const file of readdirSync(facetDir).filter((f) => f.endsWith(".json"))) {
    ajv.addSchema(read(path.join(facetDir, file)));
  }
  const validator = (id: string): Validate => {
    const validate = ajv.getSchema(id);
    if (validate === undefined) throw new Error(`no schema registered as ${id}`);
    return (value) => {
      validate(value);
      return (validate.errors ?? []).map((e) => `${id} ${e.instancePath} ${e.message}`);
    };
  };
  return { event: validator(OPENLINEAGE_SCHEMA), facet: (url) => validator(url.split("#")[0]!) };
}

/** Every error of `event` against the core schema and, per facet, against its own schema. */
function specErrors(spec: ReturnType<typeof specValidator>, event: OpenLineageRunEvent): string[] {
  const errors = spec.event(event);
  const facetGroups = [
    event.job.facets,
    ...[...event.inputs, ...event.outputs].map((d) => d.facets),
  ];
  for (const facets of facetGroups) {
    for (const [name, facet] of Object.entries(facets ?? {})) {
      // A facet schema describes the `facets` object: `{ "<name>": <facet> }`.
      errors.push(...spec.facet(facet._schemaURL)({ [name]: facet }));
    }
  }
  return errors;
}

describe("the OpenLineage spec schemas", () => {
  it("are kept in the repository, so a fresh clone anywhere validates against them", () => {
    const inside = path.relative(REPO_ROOT, SPEC_DIR);
    expect(inside.startsWith("..") || path.isAbsolute(inside), SPEC_DIR).toBe(false);
    expect(existsSync(path.join(SPEC_DIR, "OpenLineage.json"))).toBe(true);
    expect(existsSync(path.join(SPEC_DIR, "SOURCE.md"))).toBe(true);
  });

  it("include a schema for every facet strata writes", () => {
    const graph = diamond();
    const spec = specValidator();
    const urls = new Set(
      lineageToOpenLineage(graph, graph.keys(), { projectName: "docs" }).flatMap((event) =>
        [event.job.facets, ...[...event.inputs, ...event.outputs].map((d) => d.facets ?? {})]
          .flatMap((facets) => Object.values(facets))
          .map((facet) => facet._schemaURL),
      ),
    );
    expect(urls.size).toBeGreaterThan(0);
    for (const url of urls) expect(() => spec.facet(url), url).not.toThrow();
  });
});

describe("lineageToOpenLineage", () => {
  let spec: ReturnType<typeof specValidator>;
  beforeAll(() => {
    spec = specValidator();
  });

  it("emits events that all validate against the OpenLineage schema and their facets' schemas", () => {
    const graph = diamond();
    const events = lineageToOpenLineage(graph, graph.keys(), { projectName: "docs" });
    expect(events).toHaveLength(4);
    for (const event of events) expect(specErrors(spec, event)).toEqual([]);
    // The facets the check above covered are really there.
    const documents = events.find((e) => e.job.name === "raw/documents")!;
    expect(Object.keys(documents.job.facets).sort()).toEqual([
      "documentation",
      "jobType",
      "ownership",
      "tags",
    ]);
    expect(Object.keys(documents.outputs[0]!.facets ?? {}).sort()).toEqual([
      "documentation",
      "ownership",
      "tags",
    ]);
  });

  it("rejects an event the schema forbids, so the validation above has teeth", () => {
    const graph = diamond();
    const [event] = lineageToOpenLineage(graph, ["report"], { projectName: "docs" });
    const broken = { ...event!, run: { runId: "not-a-uuid" } };
    expect(specErrors(spec, broken as OpenLineageRunEvent)).not.toEqual([]);
    const badFacet = {
      ...event!,
      job: {
        ...event!.job,
        facets: {
          documentation: {
            ...event!.job.facets.jobType!,
            _schemaURL:
              "https://openlineage.io/spec/facets/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
          },
        },
      },
    };
    expect(specErrors(spec, badFacet as OpenLineageRunEvent)).not.toEqual([]);
  });

  it("makes each asset a job that reads its deps and writes itself as a dataset", () => {
    const graph = diamond();
    const events = lineageToOpenLineage(graph, graph.keys(), {
      projectName: "docs",
      producer: "https://example.com/strata/v1",
      eventTime: new Date(EVENT_TIME),
    });
    const report = events.find((e) => e.job.name === "report")!;
    expect(report).toMatchObject({
      eventType: "COMPLETE",
      eventTime: EVENT_TIME,
      producer: "https://example.com/strata/v1",
      schemaURL: "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
      job: { namespace: "strata://docs", name: "report" },
      inputs: [
        { namespace: "strata://docs", name: "analyses" },
        { namespace: "strata://docs", name: "summaries" },
      ],
      outputs: [{ namespace: "strata://docs", name: "report" }],
    });
    expect(report.job.facets.jobType).toEqual({
      _producer: "https://example.com/strata/v1",
      _schemaURL:
        "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
      processingType: "BATCH",
      integration: "STRATA",
      jobType: "ASSET",
    });
    const documents = events.find((e) => e.job.name === "raw/documents")!;
    expect(documents.inputs).toEqual([]);
    expect(documents.job.facets.ownership).toMatchObject({
      owners: [{ name: "team:nlp" }, { name: "user:ada" }],
    });
    expect(documents.outputs[0]!.facets?.tags).toMatchObject({
      tags: [
        { key: "team", value: "nlp", source: "STRATA" },
        { key: "tier", value: "", source: "STRATA" },
      ],
    });
  });

  it("emits only the selected assets, deps first, with inputs outside the selection kept", () => {
    const graph = diamond();
    const events = lineageToOpenLineage(graph, ["report", "analyses"], { projectName: "docs" });
    expect(events.map((e) => e.job.name)).toEqual(["analyses", "report"]);
    expect(events[1]!.inputs.map((d) => d.name)).toEqual(["analyses", "summaries"]);
    const all = lineageToOpenLineage(graph, graph.keys(), { projectName: "docs" });
    expect(all.map((e) => e.job.name)).toEqual([
      "raw/documents",
      "analyses",
      "summaries",
      "report",
    ]);
  });

  it("derives each run id from project, key and code version, so exports are reproducible", () => {
    const graph = diamond();
    const options = { projectName: "docs", eventTime: EVENT_TIME };
    const first = lineageToOpenLineage(graph, graph.keys(), options);
    expect(lineageToOpenLineage(graph, graph.keys(), options)).toEqual(first);
    // UUIDv5 in the URL namespace (Python: uuid.uuid5(uuid.NAMESPACE_URL, name)).
    const runId = (key: string) => first.find((e) => e.job.name === key)!.run.runId;
    expect(runId("report")).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(runId("analyses")).toBe("2f01f21c-8c83-5298-9633-bcbe754e0b7f"); // name: ".../analyses?codeVersion=2"
    expect(new Set(first.map((e) => e.run.runId)).size).toBe(4);
    const other = lineageToOpenLineage(graph, ["analyses"], { projectName: "other" });
    expect(other[0]!.run.runId).not.toBe(runId("analyses"));
  });

  it("rejects an empty project name, a producer that is not a URI and an invalid time", () => {
    const graph = diamond();
    const codeOf = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof StrataError ? e.code : String(e);
      }
      return "no error";
    };
    expect(codeOf(() => lineageToOpenLineage(graph, [], { projectName: " " }))).toBe("bad_usage");
    expect(
      codeOf(() => lineageToOpenLineage(graph, [], { projectName: "p", producer: "strata" })),
    ).toBe("bad_usage");
    expect(
      codeOf(() => lineageToOpenLineage(graph, [], { projectName: "p", eventTime: "soon" })),
    ).toBe("bad_usage");
    expect(codeOf(() => lineageToOpenLineage(graph, ["nope"], { projectName: "p" }))).toBe(
      "bad_selection",
    );
  });
});
