import type { Table } from "apache-arrow";
import type { Row } from "../assets/asset-context.js";
import { StrataError } from "../errors.js";
import { closestMatch } from "../util/edit-distance.js";
import { tableToRows } from "../values/arrow-decoder.js";
import { readArrowFile } from "../values/arrow-file.js";
import { storagePath } from "../values/storage-path.js";
import type { StepResult } from "./run-result.js";

/**
 * The values a run stored, read back from its Arrow files on demand: as the rows a downstream
 * asset receives (`get`) or as the Arrow table (`table`). Only steps of this run are known; a
 * step that did not succeed has no value (`undefined`).
 *
 * @example
 * const result = await materialize({ project });
 * const rows = await result.values.get("analyses");            // an unpartitioned asset
 * const en = await result.values.get("raw/documents", "en");   // one partition of it
 */
export class RunValues {
  readonly #steps: ReadonlyArray<StepResult>;
  readonly #storageRoot: string;

  constructor(steps: ReadonlyArray<StepResult>, storageRoot: string) {
    this.#steps = steps;
    this.#storageRoot = storageRoot;
  }

  /**
   * The rows the step of `assetKey` (and `partitionKey`) stored in this run, or `undefined` when
   * it did not succeed. The partition may be left out when the run built one partition of it.
   *
   * @throws StrataError `bad_usage` for an asset (or partition) this run did not plan, or a
   *   partitioned asset built for several partitions without `partitionKey`.
   */
  async get(assetKey: string, partitionKey?: string | null): Promise<Row[] | undefined> {
    const table = await this.table(assetKey, partitionKey);
    return table === undefined ? undefined : tableToRows(table);
  }

  /** Like {@link RunValues.get}, as the Arrow table stored. */
  async table(assetKey: string, partitionKey?: string | null): Promise<Table | undefined> {
    const step = this.#step(assetKey, partitionKey);
    if (step.status !== "succeeded") return undefined;
    const path = storagePath(
      this.#storageRoot,
      step.assetKey,
      step.partitionKey,
      step.materializationId,
    );
    return readArrowFile(path, {
      assetKey: step.assetKey,
      partitionKey: step.partitionKey,
      sha256: null,
    });
  }

  #step(assetKey: string, partitionKey: string | null | undefined): StepResult {
    const steps = this.#steps.filter((s) => s.assetKey === assetKey);
    if (steps.length === 0) {
      const keys = [...new Set(this.#steps.map((s) => s.assetKey))];
      const hint = closestMatch(assetKey, keys);
      throw new StrataError(
        "bad_usage",
        `this run did not build asset "${assetKey}"; ${hint === undefined ? `it built ${keys.map((k) => `"${k}"`).join(", ")}` : `did you mean "${hint}"?`}`,
      );
    }
    if (partitionKey === undefined) {
      if (steps.length === 1) return steps[0]!;
      throw new StrataError(
        "bad_usage",
        `this run built asset "${assetKey}" for ${steps.length} partitions; name one: values.get("${assetKey}", "${steps[0]!.partitionKey}")`,
      );
    }
    const step = steps.find((s) => s.partitionKey === partitionKey);
    if (step === undefined) {
      const built = steps.map((s) => (s.partitionKey === null ? "none" : `"${s.partitionKey}"`));
      throw new StrataError(
        "bad_usage",
        `this run did not build ${partitionKey === null ? "the unpartitioned value" : `partition "${partitionKey}"`} of asset "${assetKey}"; it built ${built.join(", ")}`,
      );
    }
    return step;
  }
}
