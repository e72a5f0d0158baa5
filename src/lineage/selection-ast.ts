/**
 * How many levels a traversal walks: a count, or `"all"` for a `+` written without digits.
 *
 * @example
 * const depth: TraversalDepth = 2; // "2+key:a"
 */
export type TraversalDepth = number | "all";

/** `*`: every asset in the graph. */
export interface AllSelectionNode {
  readonly type: "all";
}

/** `key:V`: keys equal to `pattern`, where `*` in the pattern matches any run of characters. */
export interface KeySelectionNode {
  readonly type: "key";
  readonly pattern: string;
}

/** `group:V`: assets in the group (`*` is a wildcard); `null` is `<null>`, assets with no group. */
export interface GroupSelectionNode {
  readonly type: "group";
  readonly value: string | null;
}

/**
 * `tag:K` or `tag:K=V`: assets whose tag `key` has exactly `value` (`""` when no value is given).
 * A `null` key is `tag:<null>`: assets with no tags at all.
 */
export interface TagSelectionNode {
  readonly type: "tag";
  readonly key: string | null;
  readonly value: string;
}

/** `owner:V`: assets that list the owner; `null` is `<null>`, assets with no owners. */
export interface OwnerSelectionNode {
  readonly type: "owner";
  readonly value: string | null;
}

/** `kind:V`: assets that list the kind; `null` is `<null>`, assets with no kinds. */
export interface KindSelectionNode {
  readonly type: "kind";
  readonly value: string | null;
}

/** `not X`: every asset that `operand` does not select. */
export interface NotSelectionNode {
  readonly type: "not";
  readonly operand: SelectionAst;
}

/** `X and Y` / `X or Y`: the intersection or the union of both sides. */
export interface BinarySelectionNode {
  readonly type: "and" | "or";
  readonly left: SelectionAst;
  readonly right: SelectionAst;
}

/**
 * `N+X`, `X+N`, `N+X+M`: `operand` plus its ancestors up to `up` levels and its descendants up to
 * `down` levels; `null` means no traversal in that direction.
 */
export interface TraversalSelectionNode {
  readonly type: "traversal";
  readonly operand: SelectionAst;
  readonly up: TraversalDepth | null;
  readonly down: TraversalDepth | null;
}

/** `sinks(X)` / `roots(X)`: the members of `operand` with no descendant / ancestor in it. */
export interface FunctionSelectionNode {
  readonly type: "function";
  readonly name: "sinks" | "roots";
  readonly operand: SelectionAst;
}

/**
 * The parsed form of an asset selection, as {@link parseSelection} returns it: a frozen tree
 * that can be logged, compared and evaluated against any graph.
 *
 * @example
 * const ast: SelectionAst = { type: "traversal", operand: { type: "key", pattern: "raw/*" }, up: null, down: "all" };
 */
export type SelectionAst =
  | AllSelectionNode
  | KeySelectionNode
  | GroupSelectionNode
  | TagSelectionNode
  | OwnerSelectionNode
  | KindSelectionNode
  | NotSelectionNode
  | BinarySelectionNode
  | TraversalSelectionNode
  | FunctionSelectionNode;
