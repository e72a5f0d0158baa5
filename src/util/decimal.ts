/**
 * Exact decimal money in TypeScript: amounts are integer nano-dollars (`bigint`), converted from
 * and to decimal strings without ever passing through a float. Postgres `numeric` stays the
 * source of truth for stored costs; these serve estimates, budgets and returned rows.
 */
export type Nanos = bigint;

const SCALE = 9;
const UNIT = 10n ** BigInt(SCALE);

/**
 * Parses a decimal amount (`"0.10"`, `2.5`, `"1e-7"` as a price number) into nano-dollars,
 * rounding any digits past the ninth decimal half away from zero.
 *
 * @example
 * toNanos("0.40"); // 400000000n
 */
export function toNanos(value: string | number): Nanos {
  let text = typeof value === "number" ? numberToPlain(value) : value.trim();
  const negative = text.startsWith("-");
  if (negative) text = text.slice(1);
  if (!/^\d+(\.\d+)?$/.test(text))
    throw new RangeError(`"${String(value)}" is not a decimal amount`);
  const [whole = "0", fraction = ""] = text.split(".");
  const kept = fraction.slice(0, SCALE).padEnd(SCALE, "0");
  let nanos = BigInt(whole) * UNIT + BigInt(kept);
  if ((fraction[SCALE] ?? "0") >= "5") nanos += 1n;
  return negative ? -nanos : nanos;
}

/**
 * Formats nano-dollars as a plain decimal string without trailing zeros.
 *
 * @example
 * fromNanos(1_500_000n); // "0.0015"
 */
export function fromNanos(nanos: Nanos): string {
  const negative = nanos < 0n;
  const digits = (negative ? -nanos : nanos).toString().padStart(SCALE + 1, "0");
  const whole = digits.slice(0, -SCALE);
  const fraction = digits.slice(-SCALE).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`;
}

/** Prices of one model in nano-dollars per million tokens. */
export interface NanoPrices {
  readonly input: Nanos;
  readonly cachedInput: Nanos;
  readonly output: Nanos;
}

/**
 * The cost of one call by DESIGN.md's rule, in nano-dollars, rounded to the nearest nano:
 * (prompt − cached) × input + cached × cached-input + completion × output, per million tokens.
 * (`prompt_tokens` already includes `cached_tokens`, as the OpenAI API reports it.)
 *
 * @example
 * callCostNanos({ prompt: 1000, cached: 0, completion: 100 }, prices);
 */
export function callCostNanos(
  tokens: { readonly prompt: number; readonly cached: number; readonly completion: number },
  prices: NanoPrices,
): Nanos {
  const perMillion =
    BigInt(tokens.prompt - tokens.cached) * prices.input +
    BigInt(tokens.cached) * prices.cachedInput +
    BigInt(tokens.completion) * prices.output;
  return (perMillion + 500_000n) / 1_000_000n;
}

/**
 * The exact cost of one call as a decimal string (the same value Postgres computes for the
 * ledger row), from prices given as decimal strings.
 *
 * @example
 * exactCallCost({ prompt: 3, cached: 0, completion: 7 }, { input: "0.1", cachedInput: "0.01", output: "0.4" }); // "0.0000031"
 */
export function exactCallCost(
  tokens: { readonly prompt: number; readonly cached: number; readonly completion: number },
  prices: { readonly input: string; readonly cachedInput: string; readonly output: string },
): string {
  // Work at price scale + 6 digits so the division by a million is exact.
  const scale = Math.max(
    decimals(prices.input),
    decimals(prices.cachedInput),
    decimals(prices.output),
  );
  const unit = (p: string) =>
    BigInt(p.replace(".", "").replace(/^0+(?=\d)/, "") + "0".repeat(scale - decimals(p)));
  const total =
    BigInt(tokens.prompt - tokens.cached) * unit(prices.input) +
    BigInt(tokens.cached) * unit(prices.cachedInput) +
    BigInt(tokens.completion) * unit(prices.output);
  const digits = total.toString().padStart(scale + 7, "0");
  const whole = digits.slice(0, digits.length - scale - 6);
  const fraction = digits.slice(digits.length - scale - 6).replace(/0+$/, "");
  return fraction === "" ? whole : `${whole}.${fraction}`;
}

function decimals(value: string): number {
  return value.split(".")[1]?.length ?? 0;
}

/** A price number as a plain decimal string (`1e-7` → `0.0000001`), exact for what JS prints. */
export function numberToPlain(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`${value} is not a finite amount`);
  const text = String(value);
  const match = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(text);
  if (match === null) return text;
  const [, sign, whole = "", fraction = "", exp] = match;
  const digits = whole + fraction;
  const point = whole.length + Number(exp);
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`.replace(/0+$/, "");
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/**
 * Adds exact decimal strings without going through floats.
 *
 * @example
 * addDecimals(["0.1", "0.2"]); // "0.3"
 */
export function addDecimals(values: ReadonlyArray<string>): string {
  let scale = 0;
  for (const v of values) scale = Math.max(scale, decimals(v));
  let total = 0n;
  for (const v of values) {
    const negative = v.startsWith("-");
    const [whole = "0", fraction = ""] = (negative ? v.slice(1) : v).split(".");
    const units = BigInt(whole + fraction.padEnd(scale, "0"));
    total += negative ? -units : units;
  }
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`;
}
