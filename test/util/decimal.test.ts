import fc from "fast-check";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import {
  addDecimals,
  callCost,
  fromFemtos,
  numberToPlain,
  pricePerMTokText,
  pricePerToken,
  toFemtos,
} from "../../src/util/decimal.js";
import { BACKENDS, createTestStore } from "../helpers/test-store.js";

describe("toFemtos and fromFemtos", () => {
  it("parses decimal strings and numbers into femto-dollars without floats", () => {
    expect(toFemtos("0.40")).toBe(400_000_000_000_000n);
    expect(toFemtos(0.1)).toBe(100_000_000_000_000n);
    expect(toFemtos(1e-7)).toBe(100_000_000n);
    expect(toFemtos("-2.5")).toBe(-2_500_000_000_000_000n);
    expect(toFemtos(" 3 ")).toBe(3_000_000_000_000_000n);
  });

  it("rounds digits past the fifteenth decimal half away from zero", () => {
    expect(toFemtos("0.0000000000000015")).toBe(2n);
    expect(toFemtos("0.0000000000000014")).toBe(1n);
    expect(toFemtos("-0.0000000000000015")).toBe(-2n);
  });

  it("rejects text that is not a decimal amount", () => {
    for (const bad of ["", "abc", "1.2.3", "1e5", "0x10", "--1"]) {
      expect(() => toFemtos(bad)).toThrow(RangeError);
    }
    expect(() => toFemtos(Number.NaN)).toThrow(RangeError);
    expect(() => toFemtos(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });

  it("formats without trailing zeros and round-trips any femto amount", () => {
    expect(fromFemtos(1_500_000_000_000n)).toBe("0.0015");
    expect(fromFemtos(0n)).toBe("0");
    expect(fromFemtos(-1n)).toBe("-0.000000000000001");
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 26n), max: 10n ** 26n }), (n) => {
        expect(toFemtos(fromFemtos(n))).toBe(n);
      }),
    );
  });
});

describe("pricePerToken and pricePerMTokText", () => {
  it("reads a price per million tokens as femto-dollars per token, exact to nine decimals", () => {
    expect(pricePerToken(0.4)).toBe(400_000_000n);
    expect(pricePerToken("2.5")).toBe(2_500_000_000n);
    expect(pricePerToken(1e-9)).toBe(1n);
    expect(pricePerToken("0.0000000015")).toBe(2n);
    expect(pricePerMTokText(400_000_000n)).toBe("0.4");
    expect(pricePerMTokText(1n)).toBe("0.000000001");
    expect(pricePerMTokText(0n)).toBe("0");
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

  it("equals the sum of femto amounts for any list", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -(10n ** 21n), max: 10n ** 21n })), (list) => {
        const sum = list.reduce((a, b) => a + b, 0n);
        expect(toFemtos(addDecimals(list.map(fromFemtos)))).toBe(sum);
      }),
    );
  });
});

/**
 * A price with up to 9 decimals, as users write them in a project (0.15, 2.5, 0.075) and past
 * (0.000000125): a femto-dollar price per token keeps every one of them.
 */
const price = fc
  .tuple(
    fc.integer({ min: 0, max: 200 }),
    fc.integer({ min: 0, max: 999_999_999 }),
    fc.constantFrom(3, 6, 9),
  )
  .map(([whole, nano, digits]) =>
    numberToPlain(Number(`${whole}.${String(nano).padStart(9, "0").slice(0, digits)}`)),
  );

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

/** The cost of a call as a decimal string, as the fan-out writes it on a document's row. */
function costText(
  t: { prompt: number; cached: number; completion: number },
  input: string,
  cachedInput: string,
  output: string,
): string {
  const prices = {
    input: pricePerToken(input),
    cachedInput: pricePerToken(cachedInput),
    output: pricePerToken(output),
  };
  return fromFemtos(callCost(t, prices));
}

describe("callCost", () => {
  it("prices a call by DESIGN.md's rule", () => {
    expect(costText({ prompt: 3, cached: 0, completion: 7 }, "0.1", "0.01", "0.4")).toBe(
      "0.0000031",
    );
    expect(costText({ prompt: 1_000_000, cached: 400_000, completion: 0 }, "2", "0.5", "8")).toBe(
      "1.4",
    );
    // nine-decimal prices and odd token counts: exact to the femto-dollar, no rounding
    expect(
      costText({ prompt: 7, cached: 3, completion: 1 }, "0.123456789", "0.000000001", "1"),
    ).toBe("0.000001493827159");
  });

  it("adds up exactly: a sum of call costs equals the cost of the summed tokens", () => {
    fc.assert(
      fc.property(fc.array(tokens, { maxLength: 20 }), price, price, (calls, input, output) => {
        const prices = {
          input: pricePerToken(input),
          cachedInput: pricePerToken(input),
          output: pricePerToken(output),
        };
        const total = calls.reduce((sum, t) => sum + callCost(t, prices), 0n);
        const summed = calls.reduce(
          (a, t) => ({
            prompt: a.prompt + t.prompt,
            cached: a.cached + t.cached,
            completion: a.completion + t.completion,
          }),
          { prompt: 0, cached: 0, completion: 0 },
        );
        expect(total).toBe(callCost(summed, prices));
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
        expect(costText(t, input, cachedInput, output)).toBe(rows[i]?.cost);
      });
    } finally {
      await store.dispose();
    }
  });
});
