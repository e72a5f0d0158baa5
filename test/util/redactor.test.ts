import { describe, expect, it } from "vitest";
import { REDACTED, Redactor } from "../../src/util/redactor.js";

describe("Redactor", () => {
  it("replaces every occurrence of each secret, also its URL-encoded form", () => {
    const redactor = new Redactor(["sk-live-0123456789", "p@ss word!"]);
    expect(
      redactor.redact("key sk-live-0123456789, again sk-live-0123456789; url p%40ss%20word!"),
    ).toBe(`key ${REDACTED}, again ${REDACTED}; url ${REDACTED}`);
  });

  it("replaces a secret that contains another one whole", () => {
    const redactor = new Redactor(["abcdefgh", "xxabcdefghyy"]);
    expect(redactor.redact("xxabcdefghyy and abcdefgh")).toBe(`${REDACTED} and ${REDACTED}`);
  });

  it("ignores secrets too short to be credentials, unless told otherwise", () => {
    expect(new Redactor(["EMPTY"]).redact("EMPTY answer")).toBe("EMPTY answer");
    expect(new Redactor(["pw"], { minLength: 1 }).redact("my pw")).toBe(`my ${REDACTED}`);
    expect(new Redactor(["", "   "]).redact("text")).toBe("text");
  });

  it("removes the password of any URL written into a text", () => {
    expect(
      new Redactor().redact("cannot reach postgres://strata:hunter2@db:5432/x; also http://u:p@h/"),
    ).toBe(`cannot reach postgres://strata:${REDACTED}@db:5432/x; also http://u:${REDACTED}@h/`);
    expect(new Redactor().redact("see https://example.com/a:b@c")).toBe(
      "see https://example.com/a:b@c",
    );
  });
});
