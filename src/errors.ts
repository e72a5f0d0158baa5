/**
 * Every stable error code strata raises. Users and tests match on these, never on messages.
 */
export type StrataErrorCode =
  // project definition and loading
  | "project_load"
  | "bad_project"
  | "invalid_key"
  | "duplicate_key"
  | "unknown_dep"
  | "cycle"
  | "unknown_model"
  | "unknown_endpoint"
  | "partition_mismatch"
  | "invalid_definition"
  // selection and planning
  | "bad_selection"
  | "empty_selection"
  | "bad_partition"
  | "bad_usage"
  // values and compute
  | "bad_value"
  | "compute_failed"
  | "upstream_missing"
  | "value_corrupt"
  // runs
  | "run_not_found"
  | "run_not_resumable"
  | "canceled"
  | "budget_exceeded"
  | "partition_locked"
  // inference
  | "insufficient_quota"
  | "inference_failed"
  | "endpoint_unreachable"
  // store
  | "db_unreachable"
  | "db_locked"
  | "db_permission"
  | "schema_drift"
  | "migration_checksum"
  | "migration_failed"
  | "record_failed";

const STRATA_ERROR = Symbol.for("strata.StrataError");

/** Codes that mean the user asked for something invalid: the CLI exits 2 for these. */
const USAGE_CODES: ReadonlySet<StrataErrorCode> = new Set<StrataErrorCode>([
  "project_load",
  "bad_project",
  "invalid_key",
  "duplicate_key",
  "unknown_dep",
  "cycle",
  "unknown_model",
  "unknown_endpoint",
  "partition_mismatch",
  "invalid_definition",
  "bad_selection",
  "empty_selection",
  "bad_partition",
  "bad_usage",
  "run_not_found",
  "run_not_resumable",
  "db_unreachable",
  "db_locked",
  "db_permission",
  "schema_drift",
  "migration_checksum",
]);

/**
 * The base class of every error strata raises on purpose.
 *
 * `code` is stable and machine-readable; `message` is lowercase, quotes identifiers and says the
 * fix; `cause` keeps whatever went wrong underneath.
 *
 * @example
 * try { await run(); } catch (e) { if (e instanceof StrataError && e.code === "cycle") ... }
 */
export class StrataError extends Error {
  readonly code: StrataErrorCode;
  /** Marks strata's errors across copies of the package (a CommonJS project file may load one). */
  readonly [STRATA_ERROR] = true;

  /** `instanceof StrataError` holds for errors from any copy of strata in the process. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // `this` on purpose: subclasses (ComputeError, ...) keep the ordinary prototype check.
    // biome-ignore lint/complexity/noThisInStatic: the receiver is the class being tested
    if (this !== StrataError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === "object" && value !== null && STRATA_ERROR in value;
  }

  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StrataError";
    this.code = code;
  }

  /** True when the error is the user's input being wrong (CLI exit code 2). */
  get isUsageError(): boolean {
    return USAGE_CODES.has(this.code);
  }
}

/** One problem found while validating a project; a {@link ProjectValidationError} lists them all. */
export interface ValidationProblem {
  readonly code: StrataErrorCode;
  readonly message: string;
  /** The asset keys the problem is about, in the order the message names them. */
  readonly assets: ReadonlyArray<string>;
}

/**
 * A project definition with one or more problems; every problem found is listed, not just the
 * first. The error's code is the code of the first problem.
 */
export class ProjectValidationError extends StrataError {
  readonly problems: ReadonlyArray<ValidationProblem>;

  constructor(problems: ReadonlyArray<ValidationProblem>) {
    const first = problems[0];
    if (first === undefined)
      throw new TypeError("ProjectValidationError needs at least one problem");
    const message =
      problems.length === 1
        ? first.message
        : `${problems.length} problems in the project:\n${problems.map((p) => `  - ${p.message}`).join("\n")}`;
    super(first.code, message);
    this.name = "ProjectValidationError";
    this.problems = problems;
  }
}

/** A selection string that does not parse; `column` is 1-based into `selection`. */
export class SelectionSyntaxError extends StrataError {
  readonly selection: string;
  readonly column: number;

  constructor(message: string, selection: string, column: number) {
    super("bad_selection", message);
    this.name = "SelectionSyntaxError";
    this.selection = selection;
    this.column = column;
  }
}

/** The database could not be reached or opened; the message never contains a password. */
export class StoreError extends StrataError {
  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "StoreError";
  }
}

/** What a user's `compute` threw, wrapped with the asset key; the original is kept as `cause`. */
export class ComputeError extends StrataError {
  readonly assetKey: string;
  readonly partitionKey: string | null;

  constructor(assetKey: string, partitionKey: string | null, cause: unknown) {
    const where =
      partitionKey === null ? `"${assetKey}"` : `"${assetKey}" partition "${partitionKey}"`;
    const reason = cause instanceof Error ? cause.message : String(cause);
    super("compute_failed", `asset ${where} failed: ${reason}`, { cause });
    this.name = "ComputeError";
    this.assetKey = assetKey;
    this.partitionKey = partitionKey;
  }
}
