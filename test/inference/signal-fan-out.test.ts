import { describe, expect, it } from "vitest";
import { SignalFanOut } from "../../src/inference/signal-fan-out.js";

describe("SignalFanOut", () => {
  it("aborts every live child with the parent's reason, and a child made after at once", () => {
    const parent = new AbortController();
    const fanOut = new SignalFanOut(parent.signal);
    const a = fanOut.child();
    const b = fanOut.child();
    b.release();
    parent.abort(new Error("canceled"));
    expect(a.signal.aborted).toBe(true);
    expect((a.signal.reason as Error).message).toBe("canceled");
    expect(b.signal.aborted).toBe(false);
    expect(fanOut.child().signal.aborted).toBe(true);
  });

  it("lets one child carry a listener per retried attempt without a leak warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on("warning", onWarning);
    try {
      const child = new SignalFanOut(new AbortController().signal).child();
      // what the openai client leaves behind after 25 attempts of one document
      for (let i = 0; i < 25; i++) child.signal.addEventListener("abort", () => {});
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
  });
});
