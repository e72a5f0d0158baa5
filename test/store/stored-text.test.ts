import { describe, expect, it } from "vitest";
import {
  decodeStoredText,
  ESCAPED_TEXT_MARK,
  encodeStoredText,
  MAX_STORED_MESSAGE_LENGTH,
  storableJson,
  storableMessage,
  storableText,
} from "../../src/store/stored-text.js";

/** Whether Postgres `text` and `jsonb` take it as it is: no NUL, no lone surrogate. */
function storable(text: string): boolean {
  return !/\0/.test(text) && text === Buffer.from(text, "utf8").toString("utf8");
}

describe("encodeStoredText", () => {
  it.each([
    ["a NUL", "a\u0000b"],
    ["a lone high surrogate", "cut \ud83d"],
    ["a lone low surrogate", "\udc00 first"],
    ["the mark", `${ESCAPED_TEXT_MARK}{"a":1}`],
    ["the mark before JSON", `${ESCAPED_TEXT_MARK}${JSON.stringify("x")}`],
    ["control characters and quotes", '\u0001\u001f"\\\n'],
    ["an emoji pair", "ok 😀"],
  ])("round-trips a text with %s, storable", (_what, text) => {
    const stored = encodeStoredText(text);
    expect(storable(stored)).toBe(true);
    expect(decodeStoredText(stored) === text).toBe(true);
  });

  it("stores an ordinary text as it is", () => {
    for (const text of ["plain", "", 'json {"a": "\\u0000"}', "über 😀", "a\uffffb"]) {
      expect(encodeStoredText(text)).toBe(text);
    }
  });

  it("gives back a value that merely looks escaped as it is", () => {
    expect(decodeStoredText(`${ESCAPED_TEXT_MARK}not json`)).toBe(`${ESCAPED_TEXT_MARK}not json`);
    expect(decodeStoredText(`${ESCAPED_TEXT_MARK}42`)).toBe(`${ESCAPED_TEXT_MARK}42`);
  });
});

describe("storable messages", () => {
  it("replaces NUL and lone surrogates, keeping pairs", () => {
    expect(storableText("a\u0000b\ud800c😀")).toBe("a\ufffdb\ufffdc😀");
  });

  it("cuts a message of megabytes, saying how much was left out", () => {
    const message = storableMessage("x".repeat(MAX_STORED_MESSAGE_LENGTH + 5));
    expect(message).toBe(`${"x".repeat(MAX_STORED_MESSAGE_LENGTH)}… (5 more characters)`);
  });

  it("makes every string of a JSON document storable, keys too", () => {
    const json = storableJson({ "k\u0000": ["a\ud800", { b: "c\u0000" }], n: 1 });
    expect(json).not.toMatch(/\\u0000|\\ud800/);
    expect(JSON.parse(json)).toEqual({ "k\ufffd": ["a\ufffd", { b: "c\ufffd" }], n: 1 });
  });
});
