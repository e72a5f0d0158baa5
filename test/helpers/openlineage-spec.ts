import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { OPENLINEAGE_SCHEMA, type OpenLineageRunEvent } from "../../src/lineage/openlineage.js";
import { REPO_ROOT } from "./project-fixture.js";

/** The OpenLineage spec's schemas, vendored unmodified (see SOURCE.md and LICENSE.md there). */
export const OPENLINEAGE_SPEC_DIR = join(REPO_ROOT, "test", "fixtures", "openlineage");

type Validate = (value: unknown) => string[];

/**
 * Validates OpenLineage run events against the shipped core schema and, facet by facet, against
 * each facet's own schema (the core schema alone accepts any facet shape).
 *
 * @example
 * const validate = openLineageValidator();
 * expect(validate(event)).toEqual([]);
 */
export function openLineageValidator(): (event: OpenLineageRunEvent) => string[] {
  // Not strict: the spec's schemas use a non-standard "example" keyword and `required` inside
  // `not`, which Ajv's strict mode refuses although they are valid JSON Schema.
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats.default(ajv);
  const read = (file: string) => JSON.parse(readFileSync(file, "utf8")) as { $id: string };
  ajv.addSchema(read(join(OPENLINEAGE_SPEC_DIR, "OpenLineage.json")));
  const facetDir = join(OPENLINEAGE_SPEC_DIR, "facets");
  for (const file of readdirSync(facetDir).filter((f) => f.endsWith(".json"))) {
    ajv.addSchema(read(join(facetDir, file)));
  }
  const validator = (id: string): Validate => {
    const validate = ajv.getSchema(id);
    if (validate === undefined) throw new Error(`no schema registered as ${id}`);
    return (value) => {
      validate(value);
      return (validate.errors ?? []).map((e) => `${id} ${e.instancePath} ${e.message}`);
    };
  };
  const core = validator(OPENLINEAGE_SCHEMA);
  return (event) => {
    const errors = core(event);
    const facetGroups = [
      event.job.facets,
      ...[...event.inputs, ...event.outputs].map((d) => d.facets),
    ];
    for (const facets of facetGroups) {
      for (const [name, facet] of Object.entries(facets ?? {})) {
        // A facet schema describes the `facets` object: `{ "<name>": <facet> }`.
        errors.push(...validator(facet._schemaURL.split("#")[0]!)({ [name]: facet }));
      }
    }
    return errors;
  };
}
