/**
 * Formats an exact decimal amount of US dollars for people, the one way every human-readable
 * output of strata writes money: a `$`, the whole dollars with thousands separators, and every
 * significant decimal digit, at least two (`$0.00`, `$12.50`, `$1,234.0000031`). Nothing is
 * rounded: the ledger's amounts are exact, and so is what it prints (JSON and CSV keep the plain
 * decimal string).
 *
 * @example
 * formatUsd("0.1370590"); // "$0.137059"
 * formatUsd("1234.5"); // "$1,234.50"
 */
export function formatUsd(amount: string): string {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(amount.trim());
  if (match === null || (match[2] === "" && (match[3] ?? "") === "")) {
    throw new RangeError(`"${amount}" is not a decimal amount of USD`);
  }
  const whole = (match[2] ?? "").replace(/^0+(?=\d)/, "") || "0";
  const fraction = (match[3] ?? "").replace(/0+$/, "").padEnd(2, "0");
  const negative = match[1] === "-" && /[1-9]/.test(whole + fraction);
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}$${grouped}.${fraction}`;
}

/**
 * A range of amounts, as a dry run estimates them: `$0.01 – $0.04`, or one amount when both ends
 * are equal.
 *
 * @example
 * formatUsdRange("0.0116", "0.0356"); // "$0.0116 – $0.0356"
 */
export function formatUsdRange(low: string, high: string): string {
  const from = formatUsd(low);
  const to = formatUsd(high);
  return from === to ? from : `${from} – ${to}`;
}
