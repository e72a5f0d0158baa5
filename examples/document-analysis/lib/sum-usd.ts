/**
 * Adds exact decimal USD amounts given as strings ("0.0000529"), without floats: each amount is
 * scaled to an integer `bigint` at the largest number of decimal places among them.
 *
 * strata reports `cost_usd` as exact decimal strings because money is never a float; an asset
 * that sums costs should keep them exact too.
 *
 * @example
 * sumUsd(["0.1", "0.2"]); // "0.3" (0.1 + 0.2 would be 0.30000000000000004)
 */
export function sumUsd(amounts: ReadonlyArray<string>): string {
  const scale = Math.max(0, ...amounts.map((a) => a.split(".")[1]?.length ?? 0));
  let total = 0n;
  for (const amount of amounts) {
    const [whole = "0", fraction = ""] = amount.replace(/^-/, "").split(".");
    const units = BigInt(whole + fraction.padEnd(scale, "0"));
    total += amount.startsWith("-") ? -units : units;
  }
  const negative = total < 0n;
  const digits = (negative ? -total : total).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`;
}
