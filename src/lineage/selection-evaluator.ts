import type { AssetKey } from "../assets/asset-key.js";
import type { AssetGraph } from "./asset-graph.js";
import type { KeySelectionNode, SelectionAst, TraversalDepth } from "./selection-ast.js";
import {
  type Adjacency,
  postingsOf,
  type SelectionIndex,
  selectionIndexOf,
  tagPosting,
} from "./selection-index.js";
import { parseSelection } from "./selection-parser.js";

/** A set of assets as one byte per asset id: 1 when selected. */
type Membership = Uint8Array;

// Wildcard patterns are compiled once per parsed node, not once per asset or per evaluation.
const PATTERNS = new WeakMap<SelectionAst, RegExp>();

/**
 * Evaluates a parsed selection against a graph and returns the selected keys, in key order.
 *
 * Meanings follow Dagster: `key:` and `group:` treat `*` as "any characters" (across `/` too) and
 * are exact otherwise; `tag:K` matches the tag K with an empty value and `tag:K=V` the exact pair;
 * `<null>` selects assets with no owners / kinds / tags / group; `not X` is every asset outside X;
 * `sinks(X)` keeps the members of X with no descendant in X and `roots(X)` those with no ancestor
 * in X, following paths through assets outside X.
 *
 * @example
 * const keys = evaluateSelection(parseSelection("roots(group:raw+)"), graph); // Set { "raw/documents" }
 */
export function evaluateSelection(ast: SelectionAst, graph: AssetGraph): Set<AssetKey> {
  const index = selectionIndexOf(graph);
  const selected = evaluate(ast, index);
  const keys = new Set<AssetKey>();
  for (let i = 0; i < selected.length; i++) if (selected[i] === 1) keys.add(index.keys[i]!);
  return keys;
}

/**
 * Parses `text` and returns the keys it selects in `graph`, sorted.
 *
 * A valid selection that matches nothing returns an empty list; deciding whether that is an
 * error is the caller's business (`materialize` refuses it, `list` prints nothing).
 *
 * @throws SelectionSyntaxError when `text` does not parse.
 * @example
 * selectAssets("raw/documents+", graph); // ["analyses", "raw/documents"]
 */
export function selectAssets(text: string, graph: AssetGraph): ReadonlyArray<AssetKey> {
  const index = selectionIndexOf(graph);
  const selected = evaluate(parseSelection(text), index);
  const keys: AssetKey[] = [];
  for (let i = 0; i < selected.length; i++) if (selected[i] === 1) keys.push(index.keys[i]!);
  return keys;
}

function evaluate(ast: SelectionAst, index: SelectionIndex): Membership {
  const n = index.keys.length;
  switch (ast.type) {
    case "all":
      return new Uint8Array(n).fill(1);
    case "key":
      return matchKey(ast, index);
    case "group": {
      const groups = postingsOf(index, "group");
      if (ast.value === null) return mark(n, groups.none);
      if (!ast.value.includes("*")) return mark(n, groups.byValue.get(ast.value));
      // Few distinct groups: test the pattern once per group, not once per asset.
      const regex = patternOf(ast, ast.value);
      const selected = new Uint8Array(n);
      for (const [group, ids] of groups.byValue) if (regex.test(group)) markInto(selected, ids);
      return selected;
    }
    case "owner":
    case "kind": {
      const postings = postingsOf(index, ast.type);
      return mark(n, ast.value === null ? postings.none : postings.byValue.get(ast.value));
    }
    case "tag": {
      const tags = postingsOf(index, "tag");
      if (ast.key === null) {
        // As Dagster's UI: `tag:<null>` is the assets without tags; `tag:<null>=V` matches none.
        return ast.value === "" ? mark(n, tags.none) : new Uint8Array(n);
      }
      return mark(n, tags.byValue.get(tagPosting(ast.key, ast.value)));
    }
    case "not": {
      const operand = evaluate(ast.operand, index);
      for (let i = 0; i < n; i++) operand[i] = 1 - operand[i]!;
      return operand;
    }
    case "and":
    case "or": {
      // `a or b or c ...` parses left-deep: walk the chain, not the stack, so a generated
      // selection of 100k terms cannot overflow it.
      const rights: SelectionAst[] = [];
      let leftmost: SelectionAst = ast;
      while (leftmost.type === ast.type) {
        rights.push(leftmost.right);
        leftmost = leftmost.left;
      }
      const result = evaluate(leftmost, index);
      for (let r = rights.length - 1; r >= 0; r--) {
        const right = evaluate(rights[r]!, index);
        if (ast.type === "and") for (let i = 0; i < n; i++) result[i] = result[i]! & right[i]!;
        else for (let i = 0; i < n; i++) result[i] = result[i]! | right[i]!;
      }
      return result;
    }
    case "traversal": {
      const operand = evaluate(ast.operand, index);
      const result = operand.slice();
      if (ast.up !== null) walk(index.parents, operand, levels(ast.up), result);
      if (ast.down !== null) walk(index.children, operand, levels(ast.down), result);
      return result;
    }
    case "function": {
      const members = evaluate(ast.operand, index);
      // A sink has no descendant in the set: it is a member that is no member's ancestor.
      const beyond = strictlyReachable(
        ast.name === "sinks" ? index.parents : index.children,
        members,
      );
      for (let i = 0; i < n; i++) if (beyond[i] === 1) members[i] = 0;
      return members;
    }
  }
}

function matchKey(ast: KeySelectionNode, index: SelectionIndex): Membership {
  const { keys } = index;
  const selected = new Uint8Array(keys.length);
  const star = ast.pattern.indexOf("*");
  if (star < 0) {
    const id = index.ids.get(ast.pattern);
    if (id !== undefined) selected[id] = 1;
    return selected;
  }
  // Keys are sorted, so the literal prefix before the first `*` bounds the keys worth testing.
  const prefix = ast.pattern.slice(0, star);
  const regex = patternOf(ast, ast.pattern);
  for (let i = lowerBound(keys, prefix); i < keys.length; i++) {
    const key = keys[i]!;
    if (!key.startsWith(prefix)) break;
    if (regex.test(key)) selected[i] = 1;
  }
  return selected;
}

/** The anchored RegExp for a `*` wildcard pattern, compiled once per parsed node. */
function patternOf(node: SelectionAst, pattern: string): RegExp {
  let regex = PATTERNS.get(node);
  if (regex === undefined) {
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    regex = new RegExp(`^${source}$`, "s");
    PATTERNS.set(node, regex);
  }
  return regex;
}

/** The first index in sorted `keys` whose key is not below `prefix`. */
function lowerBound(keys: ReadonlyArray<AssetKey>, prefix: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (keys[middle]! < prefix) low = middle + 1;
    else high = middle;
  }
  return low;
}

function mark(n: number, ids: ReadonlyArray<number> | undefined): Membership {
  const selected = new Uint8Array(n);
  if (ids !== undefined) markInto(selected, ids);
  return selected;
}

function markInto(selected: Membership, ids: ReadonlyArray<number>): void {
  for (const id of ids) selected[id] = 1;
}

function levels(depth: TraversalDepth): number {
  return depth === "all" ? Number.POSITIVE_INFINITY : depth;
}

/** Adds to `result` everything within `depth` steps of `start` along `edges`, breadth first. */
function walk(edges: Adjacency, start: Membership, depth: number, result: Membership): void {
  const { offsets, targets } = edges;
  const seen = start.slice();
  let frontier: number[] = [];
  for (let i = 0; i < start.length; i++) if (start[i] === 1) frontier.push(i);
  for (let level = 1; level <= depth && frontier.length > 0; level++) {
    const next: number[] = [];
    for (const v of frontier) {
      for (let e = offsets[v]!; e < offsets[v + 1]!; e++) {
        const w = targets[e]!;
        if (seen[w] === 0) {
          seen[w] = 1;
          result[w] = 1;
          next.push(w);
        }
      }
    }
    frontier = next;
  }
}

/** Everything one or more steps from a member of `start` along `edges`, members included. */
function strictlyReachable(edges: Adjacency, start: Membership): Membership {
  const { offsets, targets } = edges;
  const reached = new Uint8Array(start.length);
  const stack: number[] = [];
  for (let i = 0; i < start.length; i++) {
    if (start[i] !== 1) continue;
    for (let e = offsets[i]!; e < offsets[i + 1]!; e++) {
      const w = targets[e]!;
      if (reached[w] === 0) {
        reached[w] = 1;
        stack.push(w);
      }
    }
  }
  while (stack.length > 0) {
    const v = stack.pop()!;
    for (let e = offsets[v]!; e < offsets[v + 1]!; e++) {
      const w = targets[e]!;
      if (reached[w] === 0) {
        reached[w] = 1;
        stack.push(w);
      }
    }
  }
  return reached;
}
