import { setMaxListeners } from "node:events";

/**
 * Hands out child abort signals that follow one parent signal, through a single listener on the
 * parent. Thousands of in-flight calls each listening on the step's own signal made every
 * add/removeEventListener scan thousands of listeners (a fifth of the fan-out's CPU); a child
 * per call keeps the parent at one listener and each child at a handful.
 *
 * @example
 * const children = new SignalFanOut(step.signal);
 * const call = children.child(); try { await fetch(url, { signal: call.signal }); } finally { call.release(); }
 */
export class SignalFanOut {
  readonly #children = new Set<AbortController>();
  readonly #parent: AbortSignal;

  constructor(parent: AbortSignal) {
    this.#parent = parent;
    parent.addEventListener(
      "abort",
      () => {
        for (const child of this.#children) child.abort(parent.reason);
        this.#children.clear();
      },
      { once: true },
    );
  }

  /** A signal aborted with the parent; release it when the call is done. */
  child(): { readonly signal: AbortSignal; release(): void } {
    const controller = new AbortController();
    // The openai client adds an abort listener to the signal of every request and never removes
    // it, so a document retried through an endpoint outage piles up one per attempt on its child.
    // A child lives for one document's calls: that is no leak, and no warning should say so.
    setMaxListeners(0, controller.signal);
    if (this.#parent.aborted) controller.abort(this.#parent.reason);
    else this.#children.add(controller);
    return { signal: controller.signal, release: () => this.#children.delete(controller) };
  }
}

const FAN_OUTS = new WeakMap<AbortSignal, SignalFanOut>();

/**
 * The one {@link SignalFanOut} of a signal (a step's), shared by every call made under it.
 *
 * @example
 * const call = signalFanOut(step.signal).child();
 */
export function signalFanOut(signal: AbortSignal): SignalFanOut {
  let fanOut = FAN_OUTS.get(signal);
  if (fanOut === undefined) {
    fanOut = new SignalFanOut(signal);
    FAN_OUTS.set(signal, fanOut);
  }
  return fanOut;
}
