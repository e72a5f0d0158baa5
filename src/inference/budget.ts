import { StrataError } from "../errors.js";
import { fromNanos, type Nanos, toNanos } from "../util/decimal.js";

/**
 * A run's `--max-cost` as a reservation: before each call an upper-bound estimate is reserved,
 * after it the reservation is settled to the real cost. Calls that cannot be reserved are not
 * made, so concurrent calls overshoot the cap by at most their own estimate error. A resumed
 * run starts from what the runs it resumes spent: the cap covers the whole chain.
 *
 * @example
 * const budget = new Budget("5.00", "1.25"); // $3.75 left
 * const ticket = budget.reserve(estimate); if (ticket === null) stop(); ... budget.settle(ticket, actual);
 */
export class Budget {
  readonly cap: Nanos | null;
  #spent: Nanos = 0n;
  #reserved: Nanos = 0n;
  #exhausted = false;

  constructor(capUsd: string | null, spentBeforeUsd = "0") {
    this.cap = capUsd === null ? null : toNanos(capUsd);
    this.#spent = toNanos(spentBeforeUsd);
  }

  /** Spent so far by this run and the runs it resumes, in nano-dollars. */
  get spent(): Nanos {
    return this.#spent;
  }

  /** True once a call could not be reserved. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  /** Reserves `estimate`; null when it would pass the cap (and from then on, every time). */
  reserve(estimate: Nanos): Nanos | null {
    if (this.cap === null) return estimate;
    if (this.#exhausted || this.#spent + this.#reserved + estimate > this.cap) {
      this.#exhausted = true;
      return null;
    }
    this.#reserved += estimate;
    return estimate;
  }

  /** Replaces a reservation by what the call really cost (0 for a call that was not billed). */
  settle(reservation: Nanos, actual: Nanos): void {
    if (this.cap !== null) this.#reserved -= reservation;
    this.#spent += actual;
  }

  /** The error a step ends with when the budget stopped it. */
  exceededError(runId: string): StrataError {
    const cap = this.cap === null ? "" : fromNanos(this.cap);
    return new StrataError(
      "budget_exceeded",
      `the run reached its --max-cost of $${cap} (spent $${fromNanos(this.#spent)}); resume it with a higher cap: strata runs resume ${runId} --max-cost N`,
    );
  }
}
