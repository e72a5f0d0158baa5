import { SelectionSyntaxError } from "../errors.js";
import type { SelectionAst, TraversalDepth } from "./selection-ast.js";
import {
  quoteSelection,
  type SelectionToken,
  type SelectionTokenKind,
  tokenizeSelection,
} from "./selection-tokenizer.js";

type AttributeName = "key" | "group" | "tag" | "owner" | "kind";

const ATTRIBUTES: ReadonlySet<string> = new Set<AttributeName>([
  "key",
  "group",
  "tag",
  "owner",
  "kind",
]);
const FUNCTIONS: ReadonlySet<string> = new Set(["sinks", "roots"]);
const VALUE_KINDS: ReadonlySet<string> = new Set(["word", "digits", "star", "string", "null"]);
const OPERATORS: ReadonlySet<SelectionTokenKind> = new Set<SelectionTokenKind>([
  "and",
  "or",
  "not",
]);

/**
 * How deeply parentheses, `not` and `sinks(...)` / `roots(...)` may nest in one selection.
 *
 * Parsing and evaluating recurse once per level, so a generated selection of 100k `(` would
 * otherwise overflow the stack; long chains of `or` and `and` do not nest and have no limit.
 */
export const MAX_SELECTION_NESTING = 100;

/**
 * Parses an asset selection written in Dagster's selection language into a {@link SelectionAst}.
 *
 * The grammar is Dagster's `AssetSelection.g4`: `or` binds loosest, then `and`, then `not`
 * (keywords in any case); `N+X` adds N levels upstream, `X+N` N levels downstream and a `+`
 * without digits every level; terms are `*`, `key:`, `group:`, `tag:K` / `tag:K=V`, `owner:`,
 * `kind:`, `sinks(...)`, `roots(...)` and parentheses. Values are bare words of
 * `[A-Za-z0-9_./*-]`, double-quoted strings or `<null>`. A bare word with no attribute is a key,
 * as Dagster's CLI accepts (`raw/documents+`); a key made only of digits must be written
 * `key:2024`, since `2024+` reads as a depth. The grammar's keywords (`key`, `group`, `tag`,
 * `owner`, `kind`, `sinks`, `roots`, `and`, `or`, `not`) are never bare keys, as in Dagster: the
 * error says to write `key:sinks`. Nesting deeper than {@link MAX_SELECTION_NESTING} is an error.
 *
 * @throws SelectionSyntaxError naming the 1-based column of the first token that does not fit.
 * @example
 * parseSelection("2+key:analyses and not tag:pii");
 * // { type: "and", left: { type: "traversal", ... }, right: { type: "not", ... } }
 */
export function parseSelection(text: string): SelectionAst {
  return new SelectionParser(text).parse();
}

class SelectionParser {
  readonly #text: string;
  readonly #tokens: ReadonlyArray<SelectionToken>;
  #position = 0;
  #nesting = 0;

  constructor(text: string) {
    this.#text = text;
    this.#tokens = tokenizeSelection(text);
  }

  parse(): SelectionAst {
    const first = this.#peek();
    if (first.kind === "end") {
      throw new SelectionSyntaxError(
        `empty selection at column 1 in ${JSON.stringify(this.#text)}; ` +
          `write an expression such as key:"raw/*", or * for every asset`,
        this.#text,
        1,
      );
    }
    if (OPERATORS.has(first.kind) && this.#peek(1).kind === "end") {
      this.#fail(first, operatorKeywordHint(first.text), "unexpected keyword");
    }
    const expr = this.#or(null);
    const rest = this.#peek();
    if (rest.kind !== "end") this.#fail(rest, `expected "and", "or" or the end of the selection`);
    return expr;
  }

  #or(after: SelectionToken | null): SelectionAst {
    let left = this.#and(after);
    while (this.#peek().kind === "or") {
      const op = this.#take();
      left = Object.freeze({ type: "or", left, right: this.#and(op) });
    }
    return left;
  }

  #and(after: SelectionToken | null): SelectionAst {
    let left = this.#not(after);
    while (this.#peek().kind === "and") {
      const op = this.#take();
      left = Object.freeze({ type: "and", left, right: this.#not(op) });
    }
    return left;
  }

  #not(after: SelectionToken | null): SelectionAst {
    if (this.#peek().kind !== "not") return this.#traversal(after);
    const op = this.#take();
    this.#enter(op);
    const operand = this.#not(op);
    this.#nesting--;
    return Object.freeze({ type: "not", operand });
  }

  #traversal(after: SelectionToken | null): SelectionAst {
    if (this.#peek().kind === "star") {
      this.#take();
      if (this.#peek().kind === "plus") {
        this.#fail(this.#peek(), `"*" already selects every asset and takes no traversal`);
      }
      return Object.freeze({ type: "all" });
    }
    let up: TraversalDepth | null = null;
    let context = after;
    const first = this.#peek();
    if (first.kind === "digits" && this.#peek(1).kind === "plus") {
      up = Number(this.#take().value);
      context = this.#take();
    } else if (first.kind === "plus") {
      up = "all";
      context = this.#take();
    }
    const operand = this.#primary(context);
    let down: TraversalDepth | null = null;
    if (this.#peek().kind === "plus") {
      this.#take();
      down = this.#peek().kind === "digits" ? Number(this.#take().value) : "all";
    }
    if (up === null && down === null) return operand;
    return Object.freeze({ type: "traversal", operand, up, down });
  }

  #primary(after: SelectionToken | null): SelectionAst {
    const t = this.#peek();
    if (t.kind === "lparen") {
      this.#take();
      this.#enter(t);
      const inner = this.#or(t);
      this.#close(t);
      this.#nesting--;
      return inner;
    }
    if (t.kind === "word" || t.kind === "digits") {
      const next = this.#peek(1).kind;
      if (next === "colon") return this.#attribute();
      if (next === "lparen") return this.#function();
      const name = t.value.toLowerCase();
      if (ATTRIBUTES.has(name) || FUNCTIONS.has(name)) {
        this.#fail(t, wordKeywordHint(t.value, name), "unexpected keyword");
      }
      this.#take();
      return Object.freeze({ type: "key", pattern: t.value });
    }
    if (t.kind === "star") this.#fail(t, `"*" already selects every asset`);
    if (t.kind === "string") {
      this.#fail(t, `write an attribute before a quoted value, as in key:${t.text}`);
    }
    this.#fail(
      t,
      after === null
        ? `expected a selection such as key:"raw/*"`
        : `expected a selection after ${JSON.stringify(after.text)}`,
    );
  }

  #attribute(): SelectionAst {
    const word = this.#take();
    const name = word.value.toLowerCase();
    if (!ATTRIBUTES.has(name)) {
      const stripped = name.replace(/^\*+/, "");
      if (stripped !== name && ATTRIBUTES.has(stripped)) {
        this.#fail(
          word,
          `"*" is not a traversal: write "+${word.value.slice(name.length - stripped.length)}:..." for upstream assets, or "*" alone for every asset`,
        );
      }
      this.#fail(word, `use key, group, tag, owner or kind`, "unknown attribute");
    }
    this.#take();
    const attribute = name as AttributeName;
    const value = this.#value(`${word.text}:`);
    switch (attribute) {
      case "key":
        if (value === null) {
          this.#fail(
            this.#tokens[this.#position - 1]!,
            `every asset has a key: write a name or a pattern such as key:"raw/*"`,
          );
        }
        return Object.freeze({ type: "key", pattern: value });
      case "tag": {
        let tagValue = "";
        if (this.#peek().kind === "equals") {
          this.#take();
          // Dagster reads `tag:K=<null>` as `tag:K`: the tag with an empty value.
          tagValue = this.#value("=") ?? "";
        }
        return Object.freeze({ type: "tag", key: value, value: tagValue });
      }
      case "group":
      case "owner":
      case "kind":
        return Object.freeze({ type: attribute, value });
    }
  }

  #function(): SelectionAst {
    const word = this.#take();
    const name = word.value.toLowerCase();
    if (!FUNCTIONS.has(name)) {
      this.#fail(word, `use sinks(...) or roots(...)`, "unknown function");
    }
    const open = this.#take();
    this.#enter(word);
    const operand = this.#or(open);
    this.#close(open);
    this.#nesting--;
    return Object.freeze({ type: "function", name: name as "sinks" | "roots", operand });
  }

  /** Reads the value written after `written`; `null` stands for `<null>`. */
  #value(written: string): string | null {
    const t = this.#peek();
    if (!VALUE_KINDS.has(t.kind)) {
      const quoteHint =
        t.kind === "and" || t.kind === "or" || t.kind === "not"
          ? `; quote a value that is a keyword, as in ${written}"${t.text}"`
          : "";
      this.#fail(t, `expected a value after ${JSON.stringify(written)}${quoteHint}`);
    }
    this.#take();
    return t.kind === "null" ? null : t.value;
  }

  #close(open: SelectionToken): void {
    const t = this.#peek();
    if (t.kind !== "rparen") {
      this.#fail(t, `expected "and", "or" or ")" to close the "(" at column ${open.column}`);
    }
    this.#take();
  }

  /** One level deeper, opened by `token`; past the limit, an error rather than a stack overflow. */
  #enter(token: SelectionToken): void {
    this.#nesting++;
    if (this.#nesting <= MAX_SELECTION_NESTING) return;
    throw new SelectionSyntaxError(
      `selection nests more than ${MAX_SELECTION_NESTING} levels deep at column ${token.column} in ${quoteSelection(this.#text, token.column)}; ` +
        `remove redundant parentheses and "not"s, or join the terms with "or" / "and", which need no nesting`,
      this.#text,
      token.column,
    );
  }

  #peek(ahead = 0): SelectionToken {
    const tokens = this.#tokens;
    return tokens[Math.min(this.#position + ahead, tokens.length - 1)]!;
  }

  #take(): SelectionToken {
    const t = this.#peek();
    if (t.kind !== "end") this.#position++;
    return t;
  }

  #fail(token: SelectionToken, hint: string, what = "unexpected"): never {
    // A selection that ends right after an operator is reported at the operator, as DESIGN.md's
    // example does: `unexpected "and" at column 7 in "key:a and"`.
    const previous = this.#tokens[this.#position - 1];
    const dangling =
      token.kind === "end" && what === "unexpected" && previous !== undefined
        ? ["and", "or", "not", "plus"].includes(previous.kind)
        : false;
    const t = dangling ? previous! : token;
    const subject =
      what !== "unexpected"
        ? `${what} ${JSON.stringify(t.text)}`
        : t.kind === "end"
          ? "unexpected end of selection"
          : `unexpected ${JSON.stringify(t.text)}`;
    throw new SelectionSyntaxError(
      `${subject} at column ${t.column} in ${quoteSelection(this.#text, t.column)}; ${hint}`,
      this.#text,
      t.column,
    );
  }
}

/** What to write instead of `key`, `group`, `tag`, `owner`, `kind`, `sinks` or `roots` alone. */
function wordKeywordHint(written: string, name: string): string {
  const asKey = `write key:${written} for the asset named ${JSON.stringify(written)}`;
  if (FUNCTIONS.has(name)) return `${asKey}, or ${name}(...) for the ${name} of a selection`;
  return name === "key" ? asKey : `${asKey}, or ${name}:VALUE to select by ${name}`;
}

/** What to write instead of `and`, `or` or `not` alone. */
function operatorKeywordHint(written: string): string {
  const asKey = `write key:${JSON.stringify(written)} for the asset named ${JSON.stringify(written)}`;
  return written.toLowerCase() === "not"
    ? `${asKey}, or "not SELECTION" for the assets outside a selection`
    : `${asKey}, or put "${written.toLowerCase()}" between two selections`;
}
