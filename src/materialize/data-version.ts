import { createHash } from "node:crypto";

/**
 * The data version of a materialization, as Dagster defines it: a hash of the asset's code
 * version and the data versions of the inputs it read. An asset without a code version gets a
 * new data version on every materialization (its materialization id stands in for the code
 * version), since nothing says its output would be the same.
 *
 * @example
 * dataVersion({ codeVersion: "1", materializationId: "m1", inputDataVersions: ["a1", "b7"] });
 */
export function dataVersion(options: {
  readonly codeVersion: string | null;
  readonly materializationId: string;
  readonly inputDataVersions: ReadonlyArray<string>;
}): string {
  const hash = createHash("sha256");
  hash.update(
    options.codeVersion === null
      ? `materialization:${options.materializationId}`
      : `code:${options.codeVersion}`,
  );
  for (const v of [...options.inputDataVersions].sort()) hash.update(`\ninput:${v}`);
  return hash.digest("hex").slice(0, 24);
}
