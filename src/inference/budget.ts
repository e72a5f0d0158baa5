import { StrataError } from "../errors.js";
import { type Femtos, fromFemtos, toFemtos } from "../util/decimal.js";

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
  readonly cap: Femtos | null;
  #spent: Femtos = 0n;
  #reserved: Femtos = 0n;
  #exhausted = false;

  constructor(capUsd: string | null, spentBeforeUsd = "0") {
    this.cap = capUsd === null ? null : toFemtos(capUsd);
    this.#spent = toFemtos(spentBeforeUsd);
  }

  /** Spent so far by this run and the runs it resumes, in femto-dollars. */
  get spent(): Femtos {
    return this.#spent;
  }

  /** True once a call could not be reserved. */
  get exhausted(): boolean {
    return this.#exhausted;
  }

  /** Reserves `estimate`; null when it would pass the cap (and from then on, every time). */
  reserve(estimate: Femtos): Femtos | null {
    if (this.cap === null) return estimate;
    if (this.#exhausted || this.#spent + this.#reserved + estimate > this.cap) {
      this.#exhausted = true;
      return null;
    }
    this.#reserved += estimate;
    return estimate;
  }

  /** Replaces a reservation by what the call really cost (0 for a call that was not billed). */
  settle(reservation: Femtos, actual: Femtos): void {
    if (this.cap !== null) this.#reserved -= reservation;
    this.#spent += actual;
  }

  /** The error a step ends with when the budget stopped it. */
  exceededError(runId: string): StrataError {
    const cap = this.cap === null ? "" : fromFemtos(this.cap);
    return new StrataError(
      "budget_exceeded",
      `the run reached its --max-cost of $${cap} (spent $${fromFemtos(this.#spent)}); resume it with a higher cap: strata runs resume ${runId} --max-cost N`,
    );
  }
}
