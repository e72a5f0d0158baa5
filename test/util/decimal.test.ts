import fc from "fast-check";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import {
  addDecimals,
  callCostNanos,
  exactCallCost,
  fromNanos,
  numberToPlain,
  toNanos,
} from "../../src/util/decimal.js";
import { BACKENDS, createTestStore } from "../helpers/test-store.js";

describe("toNanos and fromNanos", () => {
  it("parses decimal strings and numbers into nano-dollars without floats", () => {
    expect(toNanos("0.40")).toBe(400_000_000n);
    expect(toNanos(0.1)).toBe(100_000_000n);
    expect(toNanos(1e-7)).toBe(100n);
    expect(toNanos("-2.5")).toBe(-2_500_000_000n);
    expect(toNanos(" 3 ")).toBe(3_000_000_000n);
  });

  it("rounds digits past the ninth decimal half away from zero", () => {
    expect(toNanos("0.0000000015")).toBe(2n);
    expect(toNanos("0.0000000014")).toBe(1n);
    expect(toNanos("-0.0000000015")).toBe(-2n);
  });

  it("rejects text that is not a decimal amount", () => {
    for (const bad of ["", "abc", "1.2.3", "1e5", "0x10", "--1"]) {
      expect(() => toNanos(bad)).toThrow(RangeError);
    }
    expect(() => toNanos(Number.NaN)).toThrow(RangeError);
    expect(() => toNanos(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it("formats without trailing zeros and round-trips any nano amount", () => {
    expect(fromNanos(1_500_000n)).toBe("0.0015");
    expect(fromNanos(0n)).toBe("0");
    expect(fromNanos(-1n)).toBe("-0.000000001");
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), (n) => {
        expect(toNanos(fromNanos(n))).toBe(n);
      }),
    );
  });
});

describe("numberToPlain", () => {
  it("writes exponent forms as plain decimals", () => {
    expect(numberToPlain(1e-7)).toBe("0.0000001");
    expect(numberToPlain(1.5e-8)).toBe("0.000000015");
    expect(numberToPlain(2e21)).toBe("2000000000000000000000");
    expect(numberToPlain(0.25)).toBe("0.25");
  });
});

describe("addDecimals", () => {
  it("adds exactly where floats would not", () => {
    expect(addDecimals(["0.1", "0.2"])).toBe("0.3");
    expect(addDecimals(["1.005", "-0.005"])).toBe("1");
    expect(addDecimals([])).toBe("0");
  });

  it("equals the sum of nano amounts for any list", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n })), (list) => {
        const sum = list.reduce((a, b) => a + b, 0n);
        expect(toNanos(addDecimals(list.map(fromNanos)))).toBe(sum);
      }),
    );
  });
});

/** A price with up to 6 decimals, as users write them in a project (0.15, 2.5, 0.075). */
const price = fc
  .tuple(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 999_999 }))
  .map(([whole, micro]) => numberToPlain(Number(`${whole}.${String(micro).padStart(6, "0")}`)));

const tokens = fc
  .tuple(
    fc.integer({ min: 0, max: 20_000_000 }),
    fc.integer({ min: 0, max: 1 }),
    fc.integer({ min: 0, max: 2_000_000 }),
  )
  .chain(([prompt, anyCached, completion]) =>
    fc.record({
      prompt: fc.constant(prompt),
      cached: anyCached === 0 ? fc.constant(0) : fc.integer({ min: 0, max: prompt }),
      completion: fc.constant(completion),
    }),
  );

describe("exactCallCost", () => {
  it("prices a call by DESIGN.md's rule", () => {
    expect(
      exactCallCost(
        { prompt: 3, cached: 0, completion: 7 },
        { input: "0.1", cachedInput: "0.01", output: "0.4" },
      ),
    ).toBe("0.0000031");
    expect(
      exactCallCost(
        { prompt: 1_000_000, cached: 400_000, completion: 0 },
        { input: "2", cachedInput: "0.5", output: "8" },
      ),
    ).toBe("1.4");
  });

  it("agrees with callCostNanos to the nano", () => {
    fc.assert(
      fc.property(tokens, price, price, price, (t, input, cachedInput, output) => {
        const exact = exactCallCost(t, { input, cachedInput, output });
        const nanos = callCostNanos(t, {
          input: toNanos(input),
          cachedInput: toNanos(cachedInput),
          output: toNanos(output),
        });
        // callCostNanos rounds to the nearest nano; the exact cost differs by under half a nano
        const diff = toNanos(exact) - nanos;
        expect(diff >= -1n && diff <= 1n).toBe(true);
      }),
    );
  });
});

describe.each(BACKENDS)("the TypeScript cost of a call on %s", (backend) => {
  it("equals the ledger's numeric cost over random token counts and prices", async () => {
    const store = await createTestStore(backend);
    try {
      const samples = fc.sample(fc.tuple(tokens, price, price, price), 300);
      const values = samples.map(
        ([t, input, cachedInput, output]) =>
          sql`(${t.prompt}::bigint, ${t.cached}::bigint, ${t.completion}::bigint, ${input}::numeric, ${cachedInput}::numeric, ${output}::numeric)`,
      );
      // the same expression as the generated strata.inference_calls.cost_usd column
      const { rows } = await sql<{ cost: string }>`
        select trim_scale(((p - c) * ip + c * cip + o * op) / 1000000)::text as cost
        from (values ${sql.join(values)}) as v(p, c, o, ip, cip, op)`.execute(store.db);
      samples.forEach(([t, input, cachedInput, output], i) => {
        expect(exactCallCost(t, { input, cachedInput, output })).toBe(rows[i]?.cost);
      });
    } finally {
      await store.dispose();
    }
  });
});
