import type { SelectionAst, TraversalDepth } from "./selection-ast.js";

// Binding strength, loosest first; a child that binds looser than its place needs parentheses.
const OR = 0;
const AND = 1;
const NOT = 2;
const TRAVERSAL = 3;
const TERM = 4;

/**
 * Prints a {@link SelectionAst} as the canonical selection that parses back to the same tree.
 *
 * Values are always quoted, `<null>` is printed as such, and parentheses appear only where
 * precedence needs them. Logs and error messages use it to show what a selection was read as.
 *
 * @example
 * formatSelection(parseSelection("raw/documents+ OR tag:pii")); // 'key:"raw/documents"+ or tag:"pii"'
 */
export function formatSelection(ast: SelectionAst): string {
  switch (ast.type) {
    case "all":
      return "*";
    case "key":
      return `key:${quote(ast.pattern)}`;
    case "group":
    case "owner":
    case "kind":
      return `${ast.type}:${valueText(ast.value)}`;
    case "tag":
      return `tag:${valueText(ast.key)}${ast.value === "" ? "" : `=${quote(ast.value)}`}`;
    case "not":
      return `not ${child(ast.operand, NOT)}`;
    case "and":
    case "or": {
      // A chain parses left-deep: walk it, not the stack (a generated selection may be long).
      const strength = ast.type === "and" ? AND : OR;
      const rights: SelectionAst[] = [];
      let leftmost: SelectionAst = ast;
      while (leftmost.type === ast.type) {
        rights.push(leftmost.right);
        leftmost = leftmost.left;
      }
      const parts = [child(leftmost, strength)];
      for (let r = rights.length - 1; r >= 0; r--) parts.push(child(rights[r]!, strength + 1));
      return parts.join(` ${ast.type} `);
    }
    case "traversal": {
      const operand =
        ast.operand.type === "all" ? `(${formatSelection(ast.operand)})` : child(ast.operand, TERM);
      return `${depthText(ast.up, "up")}${operand}${depthText(ast.down, "down")}`;
    }
    case "function":
      return `${ast.name}(${formatSelection(ast.operand)})`;
  }
}

function child(ast: SelectionAst, minimum: number): string {
  const text = formatSelection(ast);
  return strength(ast) < minimum ? `(${text})` : text;
}

function strength(ast: SelectionAst): number {
  switch (ast.type) {
    case "or":
      return OR;
    case "and":
      return AND;
    case "not":
      return NOT;
    case "traversal":
      return TRAVERSAL;
    default:
      return TERM;
  }
}

function depthText(depth: TraversalDepth | null, direction: "up" | "down"): string {
  if (depth === null) return "";
  const digits = depth === "all" ? "" : String(depth);
  return direction === "up" ? `${digits}+` : `+${digits}`;
}

function valueText(value: string | null): string {
  return value === null ? "<null>" : quote(value);
}

function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, "\\$&")}"`;
}
