import type { Table } from "apache-arrow";
import type { Kysely } from "kysely";
import { StrataError } from "../errors.js";
import type { Database } from "../store/database.js";
import { selectLatestSucceeded } from "../store/materialization-queries.js";
import { tableToRows } from "../values/arrow-decoder.js";
import type { Row } from "../values/arrow-encoder.js";
import { readArrowFile } from "../values/arrow-file.js";
import { storedValuePath } from "../values/storage-path.js";
import { type PlannedInput, type PlanStep, stepId } from "./materialization-plan.js";

/** A value a step produced in this run, kept in memory until its last consumer has read it. */
interface ProducedValue {
  readonly materializationId: string;
  readonly dataVersion: string;
  readonly table: Table;
  consumersLeft: number;
}

/** What a step read: the inputs object for `compute`, and the provenance to record. */
export interface ResolvedInputs {
  readonly values: Record<string, Row[]>;
  readonly materializationIds: ReadonlyArray<string>;
  readonly dataVersions: ReadonlyArray<string>;
}

/**
 * Hands values from producing steps to consuming steps of one run, and reads the latest
 * materializations of deps outside the run from the store and their Arrow files.
 *
 * A value produced in the run stays in memory only until every step of the plan that reads it
 * has loaded it, so a long chain holds one or two values at a time, not all of them.
 */
export class StepInputs {
  readonly #db: Kysely<Database>;
  readonly #storageRoot: string;
  readonly #beforeStoreRead: () => Promise<void>;
  readonly #produced = new Map<string, ProducedValue>();
  readonly #consumers = new Map<string, number>();

  /**
   * Recorded values are read under `storageRoot` (see `storedValuePath`). `beforeStoreRead` runs
   * before any materialization is looked up in the store: the run's own step states must be
   * written first, or a step reading every partition of a dep built in this run would miss the
   * newest ones.
   */
  constructor(
    db: Kysely<Database>,
    steps: ReadonlyArray<PlanStep>,
    storageRoot: string,
    beforeStoreRead: () => Promise<void> = async () => {},
  ) {
    this.#db = db;
    this.#storageRoot = storageRoot;
    this.#beforeStoreRead = beforeStoreRead;
    for (const step of steps) {
      for (const up of step.upstreamSteps)
        this.#consumers.set(up, (this.#consumers.get(up) ?? 0) + 1);
    }
  }

  /** Keeps a step's value for the steps of the run that read it. */
  produced(step: PlanStep, materializationId: string, dataVersion: string, table: Table): void {
    const consumersLeft = this.#consumers.get(step.id) ?? 0;
    if (consumersLeft > 0) {
      this.#produced.set(step.id, { materializationId, dataVersion, table, consumersLeft });
    }
  }

  /** Loads every input of `step`; a dep that was never materialized is `upstream_missing`. */
  async resolve(step: PlanStep): Promise<ResolvedInputs> {
    const values: Record<string, Row[]> = {};
    const ids: string[] = [];
    const versions: string[] = [];
    try {
      for (const input of step.inputs) {
        const sources = await this.#sources(step, input);
        const rows: Row[] = [];
        for (const source of sources) {
          ids.push(source.materializationId);
          versions.push(source.dataVersion);
          const table =
            source.table ??
            (await readArrowFile(storedValuePath(this.#storageRoot, source.storagePath!), {
              assetKey: input.assetKey,
              partitionKey: source.partitionKey ?? null,
              sha256: source.sha256 ?? null,
            }));
          for (const row of tableToRows(table)) rows.push(row);
        }
        values[input.name] = rows;
      }
    } finally {
      this.#release(step);
    }
    return { values, materializationIds: [...new Set(ids)], dataVersions: versions };
  }

  /** Forgets what `step` would have read (it was skipped or canceled). */
  release(step: PlanStep): void {
    this.#release(step);
  }

  #release(step: PlanStep): void {
    for (const up of step.upstreamSteps) {
      const value = this.#produced.get(up);
      if (value !== undefined && --value.consumersLeft <= 0) this.#produced.delete(up);
    }
  }

  async #sources(
    step: PlanStep,
    input: PlannedInput,
  ): Promise<
    ReadonlyArray<{
      materializationId: string;
      dataVersion: string;
      table?: Table;
      storagePath?: string;
      partitionKey?: string | null;
      sha256?: string | null;
    }>
  > {
    const partitions = input.partitions;
    if (partitions.kind !== "all") {
      const partitionKey = partitions.kind === "same" ? partitions.partitionKey : null;
      const inRun = this.#produced.get(stepId(input.assetKey, partitionKey));
      if (inRun !== undefined) return [inRun];
    }
    await this.#beforeStoreRead();
    let query = selectLatestSucceeded(this.#db)
      .select(["id", "data_version", "storage_path", "storage_sha256", "partition_key"])
      .where("asset_key", "=", input.assetKey);
    if (partitions.kind === "same")
      query = query.where("partition_key", "=", partitions.partitionKey);
    if (partitions.kind === "whole") query = query.where("partition_key", "is", null);
    const rows = await query.execute();
    if (rows.length === 0) {
      const which =
        partitions.kind === "same"
          ? `partition "${partitions.partitionKey}" of "${input.assetKey}"`
          : `"${input.assetKey}"`;
      throw new StrataError(
        "upstream_missing",
        `asset "${step.assetKey}" reads ${which}, which has never been materialized; materialize it first or select it too (--select "+${step.assetKey}")`,
      );
    }
    return rows.map((r) => {
      const inRun = this.#produced.get(stepId(input.assetKey, r.partition_key));
      return inRun !== undefined && inRun.materializationId === r.id
        ? inRun
        : {
            materializationId: r.id,
            dataVersion: r.data_version ?? r.id,
            storagePath: r.storage_path ?? "",
            partitionKey: r.partition_key,
            sha256: r.storage_sha256,
          };
    });
  }
}
