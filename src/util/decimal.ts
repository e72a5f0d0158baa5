/**
 * Exact money in TypeScript: amounts are integer femto-dollars (10⁻¹⁵ USD, `bigint`), converted
 * from and to decimal strings without ever passing through a float. Femto-dollars make a call's
 * cost exact: a price per million tokens with up to nine decimals is a whole number of
 * femto-dollars per token (USD / 10⁶ tokens at 10⁻⁹ = 10⁻¹⁵ USD a token), so tokens × that price
 * needs no rounding, and equals the `numeric` cost Postgres computes for the ledger row. The
 * budget, a step's tally and the rows `ctx.infer` returns all add these integers; an amount
 * becomes a decimal string once, where it is shown or returned ({@link fromFemtos}).
 */
export type Femtos = bigint;

/** Decimal places of a femto-dollar amount. */
const FEMTO_SCALE = 15;
/**
 * Decimal places of a price per million tokens that a femto-dollar price per token keeps: the
 * price in nano-dollars per million tokens is that same integer.
 */
const PRICE_SCALE = 9;

/**
 * Parses a decimal amount of USD (`"0.10"`, `2.5`, `"1e-7"` as a number) into femto-dollars,
 * rounding any digits past the fifteenth decimal half away from zero.
 *
 * @example
 * toFemtos("0.40"); // 400000000000000n
 */
export function toFemtos(value: string | number): Femtos {
  return parseScaled(value, FEMTO_SCALE);
}

/**
 * Formats femto-dollars as a plain decimal string without trailing zeros: the one way an amount
 * leaves its integer form (a row's `cost_usd`, progress, the budget's message).
 *
 * @example
 * fromFemtos(1_500_000_000_000n); // "0.0015"
 */
export function fromFemtos(femtos: Femtos): string {
  return formatScaled(femtos, FEMTO_SCALE);
}

/** Prices of one model in femto-dollars per token (the same integers as nano-dollars per MTok). */
export interface TokenPrices {
  readonly input: Femtos;
  readonly cachedInput: Femtos;
  readonly output: Femtos;
}

/**
 * A price in USD per million tokens as femto-dollars per token, exact to the ninth decimal of the
 * price (a digit past it, a billionth of a dollar per million tokens, is rounded half away from
 * zero).
 *
 * @example
 * pricePerToken(0.4); // 400000000n
 */
export function pricePerToken(perMTok: string | number): Femtos {
  return parseScaled(perMTok, PRICE_SCALE);
}

/**
 * A price per token in USD per million tokens, as a decimal string: the snapshot a ledger row
 * keeps, from which Postgres computes the same cost as {@link callCost}.
 *
 * @example
 * pricePerMTokText(400000000n); // "0.4"
 */
export function pricePerMTokText(perToken: Femtos): string {
  return formatScaled(perToken, PRICE_SCALE);
}

/**
 * The exact cost of one call by DESIGN.md's rule, in femto-dollars:
 * (prompt − cached) × input + cached × cached-input + completion × output.
 * (`prompt_tokens` already includes `cached_tokens`, as the OpenAI API reports it.)
 *
 * @example
 * const prices = { input: pricePerToken("0.1"), cachedInput: pricePerToken("0.01"), output: pricePerToken("0.4") };
 * fromFemtos(callCost({ prompt: 3, cached: 0, completion: 7 }, prices)); // "0.0000031"
 */
export function callCost(
  tokens: { readonly prompt: number; readonly cached: number; readonly completion: number },
  prices: TokenPrices,
): Femtos {
  return (
    BigInt(tokens.prompt - tokens.cached) * prices.input +
    BigInt(tokens.cached) * prices.cachedInput +
    BigInt(tokens.completion) * prices.output
  );
}

function parseScaled(value: string | number, scale: number): bigint {
  let text = typeof value === "number" ? numberToPlain(value) : value.trim();
  const negative = text.startsWith("-");
  if (negative) text = text.slice(1);
  if (!/^\d+(\.\d+)?$/.test(text))
    throw new RangeError(`"${String(value)}" is not a decimal amount`);
  const [whole = "0", fraction = ""] = text.split(".");
  const kept = fraction.slice(0, scale).padEnd(scale, "0");
  let units = BigInt(whole) * 10n ** BigInt(scale) + BigInt(kept);
  if ((fraction[scale] ?? "0") >= "5") units += 1n;
  return negative ? -units : units;
}

function formatScaled(units: bigint, scale: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, -scale);
  const fraction = digits.slice(-scale).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`;
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
