import { describe, expect, it } from "vitest";
import { formatUsd, formatUsdRange } from "../../src/util/usd.js";

describe("formatUsd", () => {
  it.each([
    ["0", "$0.00"],
    ["0.0", "$0.00"],
    ["5", "$5.00"],
    ["12.5", "$12.50"],
    ["0.1370590", "$0.137059"],
    ["0.00000022345678989", "$0.00000022345678989"],
    ["1234.5", "$1,234.50"],
    ["1234567.000001", "$1,234,567.000001"],
    ["007.10", "$7.10"],
    [".5", "$0.50"],
    ["-1.5", "-$1.50"],
    ["-0.000", "$0.00"],
  ])("writes %s as %s: every significant digit, at least two decimals", (amount, text) => {
    expect(formatUsd(amount)).toBe(text);
  });

  it.each(["", "abc", "1e-7", "$1", "1,000", "."])(
    "rejects %j, which is not a decimal",
    (amount) => {
      expect(() => formatUsd(amount)).toThrow(RangeError);
    },
  );
});

describe("formatUsdRange", () => {
  it("writes a range, or one amount when both ends are the same", () => {
    expect(formatUsdRange("0.0116", "0.0356")).toBe("$0.0116 – $0.0356");
    expect(formatUsdRange("0", "0.000")).toBe("$0.00");
  });
});
