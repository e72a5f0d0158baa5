import { describe, expect, it } from "vitest";
import { SharedRequests } from "../../src/inference/shared-requests.js";

describe("SharedRequests", () => {
  it("gives the documents of a request the call its first document began", async () => {
    const shared = new SharedRequests();
    const release = shared.hold(["h1", "h1", "h2"]);
    expect(shared.get("h1")).toBeUndefined();
    const settle = shared.begin("h1");
    const waiting = shared.get("h1");
    expect(waiting).toBeDefined();
    expect(shared.get("h2")).toBeUndefined();
    settle(Promise.resolve({ kind: "answered", id: 7, text: "an answer" }));
    await expect(waiting).resolves.toEqual({ kind: "answered", id: 7, text: "an answer" });
    // a document that comes later in the step still finds the settled call
    expect(await shared.get("h1")).toMatchObject({ id: 7 });
    release();
  });

  it("keeps a call while any step making its request runs, and forgets it after", async () => {
    const shared = new SharedRequests();
    const first = shared.hold(["h"]);
    const second = shared.hold(["h", "other"]);
    shared.begin("h")({ kind: "failed", error: "500" });
    first();
    first(); // a second release of the same step changes nothing
    expect(await shared.get("h")).toEqual({ kind: "failed", error: "500" });
    second();
    expect(shared.get("h")).toBeUndefined();
    // a call of a request no running step makes is not kept at all
    shared.begin("h")({ kind: "failed", error: "500" });
    expect(shared.get("h")).toBeUndefined();
  });

  it("drops an abandoned call so that a waiting document makes it itself", async () => {
    const shared = new SharedRequests();
    shared.hold(["h", "h"]);
    const settle = shared.begin("h");
    const waiting = shared.get("h");
    settle(undefined);
    await expect(waiting).resolves.toBeUndefined();
    expect(shared.get("h")).toBeUndefined();
  });
});
