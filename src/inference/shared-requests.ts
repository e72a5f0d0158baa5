import type { InferenceFailure } from "./inference-failure.js";

/**
 * What became of the one call a run made for a request, as the documents sharing it see it: its
 * answer and the ledger row that paid for it, or the failure that ended it (which says whether
 * the next model of the chain may try).
 */
export type SharedOutcome =
  | { readonly kind: "answered"; readonly id: number; readonly text: string }
  | { readonly kind: "failed"; readonly failure: InferenceFailure };

/**
 * The settlement of a call begun with {@link SharedRequests.begin}: its outcome (or a promise of
 * it), or `undefined` when the call was abandoned (canceled) and a sharing document must make it
 * itself.
 */
export type SettleSharedCall<T = SharedOutcome> = (outcome: T | Promise<T> | undefined) => void;

/**
 * One run's calls by request hash, so that identical requests are sent once per run: the first
 * document to make a request sends it, and the others (of the same step, or of any step of the run
 * running meanwhile) wait for that call and are answered from it.
 *
 * A call is kept while a step that makes the same request is running ({@link hold}); once none
 * is, the answer is on the ledger, where a later step's cache lookup finds it. So a run keeps the
 * answers of its running steps only, never every answer it has had.
 *
 * @example
 * const release = shared.hold(hashes);        // before the step looks in the ledger's cache
 * const call = shared.get(hash);              // a call to wait for, or undefined: make it
 * const settle = shared.begin(hash);  ...  settle({ kind: "answered", id, text });
 * release();                                  // when the step is done and its ledger flushed
 *
 * The outcome type `T` is the run's {@link SharedOutcome}; the registry itself only tells an
 * outcome from an abandoned call (`undefined`).
 */
export class SharedRequests<T = unknown> {
  /** Per request hash, how many documents of the running steps make the request. */
  readonly #holders = new Map<string, number>();
  /** The call of each request: in flight (a promise), or its outcome once settled. */
  readonly #calls = new Map<string, Promise<T | undefined> | T>();

  /**
   * Keeps the calls of `hashes` (a step's documents' requests, repeats included) until the
   * returned release is called, once, when the step is done.
   */
  hold(hashes: ReadonlyArray<string>): () => void {
    for (const hash of hashes) this.#holders.set(hash, (this.#holders.get(hash) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const hash of hashes) {
        const holders = (this.#holders.get(hash) ?? 1) - 1;
        if (holders > 0) {
          this.#holders.set(hash, holders);
        } else {
          this.#holders.delete(hash);
          this.#calls.delete(hash);
        }
      }
    };
  }

  /** The call this run makes or made for `hash`: undefined when there is none to wait for. */
  get(hash: string): Promise<T | undefined> | T | undefined {
    return this.#calls.get(hash);
  }

  /** Registers the call of `hash` that the caller is about to make; settle it when done. */
  begin(hash: string): SettleSharedCall<T> {
    let resolve!: (outcome: T | Promise<T> | undefined) => void;
    const call = new Promise<T | undefined>((r) => {
      resolve = r;
    });
    if (this.#holders.has(hash)) this.#calls.set(hash, call);
    // Once settled, the outcome is kept instead of the promise (a run may hold many).
    void call.then((settled) => {
      if (this.#calls.get(hash) !== call) return;
      if (settled === undefined) this.#calls.delete(hash);
      else this.#calls.set(hash, settled);
    });
    return (outcome) => {
      if (outcome === undefined && this.#calls.get(hash) === call) this.#calls.delete(hash);
      resolve(outcome);
    };
  }
}
