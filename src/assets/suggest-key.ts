import { closestMatch } from "../util/edit-distance.js";

/**
 * The known key a user most likely meant by an unknown `key`, or undefined when none is close.
 *
 * First the closest key by edit distance, as `closestMatch` picks it (same limit, same
 * tie-break); else the shortest key that `key` abbreviates segment by segment
 * (`raw/docs` → `raw/documents`), which edit distance alone finds too far. Allocation-free per
 * candidate, so one lookup among 100 000 keys takes milliseconds.
 *
 * @example
 * suggestKey("raw/docs", ["raw/documents", "analyses"]); // "raw/documents"
 */
export function suggestKey(key: string, keys: ReadonlyArray<string>): string | undefined {
  // closestMatch allocates for every candidate; a bounded, allocation-free distance first keeps
  // a lookup among 100 000 keys to milliseconds. closestMatch then picks among the nearest with
  // its own limit and tie-break, so the answer is the one it would give over every key.
  const limit = Math.max(2, Math.floor(key.length / 3));
  let nearest: string[] = [];
  let nearestDistance = limit;
  for (const candidate of keys) {
    if (Math.abs(candidate.length - key.length) > nearestDistance) continue;
    if (letterDistance(key, candidate) > nearestDistance) continue;
    const d = boundedDistance(key, candidate, nearestDistance);
    if (d < nearestDistance) {
      nearest = [candidate];
      nearestDistance = d;
    } else if (d === nearestDistance) {
      nearest.push(candidate);
    }
  }
  const close = closestMatch(key, nearest);
  if (close !== undefined) return close;
  const segments = key.split("/");
  let best: string | undefined;
  for (const candidate of keys) {
    if (candidate.length <= key.length || candidate[0] !== key[0]) continue;
    if (
      best !== undefined &&
      (candidate.length > best.length || (candidate.length === best.length && candidate >= best))
    ) {
      continue;
    }
    const other = candidate.split("/");
    if (other.length === segments.length && segments.every((s, i) => abbreviates(s, other[i]!))) {
      best = candidate;
    }
  }
  return best;
}

let previousRow = new Int32Array(128);
let currentRow = new Int32Array(128);

/** The edit distance of `a` and `b` when it is at most `limit`, else `limit + 1` (banded). */
function boundedDistance(a: string, b: string, limit: number): number {
  const far = limit + 1;
  const n = b.length;
  if (previousRow.length <= n + 1) {
    previousRow = new Int32Array(2 * (n + 2));
    currentRow = new Int32Array(2 * (n + 2));
  }
  let prev = previousRow;
  let curr = currentRow;
  for (let j = 0; j <= n; j++) prev[j] = j <= limit ? j : far;
  for (let i = 1; i <= a.length; i++) {
    const lo = Math.max(1, i - limit);
    const hi = Math.min(n, i + limit);
    curr[lo - 1] = lo === 1 && i <= limit ? i : far;
    if (hi < n) curr[hi + 1] = far;
    let rowMin = far;
    const c = a.charCodeAt(i - 1);
    for (let j = lo; j <= hi; j++) {
      const substitution = prev[j - 1]! + (c === b.charCodeAt(j - 1) ? 0 : 1);
      const v = Math.min(substitution, prev[j]! + 1, curr[j - 1]! + 1, far);
      curr[j] = v;
      if (v < rowMin) rowMin = v;
    }
    // Every cell outside the band is already farther than `limit`.
    if (rowMin > limit) return far;
    [prev, curr] = [curr, prev];
  }
  return Math.min(prev[n]!, far);
}

const letterCounts = new Int32Array(65_536);

/** Bag distance: a lower bound of the edit distance, from the letters each word has. */
function letterDistance(a: string, b: string): number {
  for (let i = 0; i < a.length; i++) letterCounts[a.charCodeAt(i)]!++;
  for (let i = 0; i < b.length; i++) letterCounts[b.charCodeAt(i)]!--;
  let surplus = 0;
  let deficit = 0;
  const settle = (c: number) => {
    const n = letterCounts[c]!;
    if (n > 0) surplus += n;
    else deficit -= n;
    letterCounts[c] = 0;
  };
  for (let i = 0; i < a.length; i++) settle(a.charCodeAt(i));
  for (let i = 0; i < b.length; i++) settle(b.charCodeAt(i));
  return Math.max(surplus, deficit);
}

/** True when `short` starts as `long` does and its letters appear in `long` in order. */
function abbreviates(short: string, long: string): boolean {
  if (short[0] !== long[0]) return false;
  let j = 0;
  for (let i = 0; i < long.length && j < short.length; i++) if (long[i] === short[j]) j++;
  return j === short.length;
}
