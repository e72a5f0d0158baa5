import { SelectionSyntaxError } from "../errors.js";

/**
 * The kinds of token in a selection.
 *
 * `word` is a bare word of `[A-Za-z0-9_./*-]`; a word of digits only is `digits` (a traversal
 * depth, or a value), a lone `*` is `star`; `and`, `or` and `not` in any case are keywords.
 */
export type SelectionTokenKind =
  | "word"
  | "digits"
  | "star"
  | "string"
  | "null"
  | "and"
  | "or"
  | "not"
  | "colon"
  | "equals"
  | "plus"
  | "lparen"
  | "rparen"
  | "end";

/**
 * One token of a selection.
 *
 * `text` is the source as written (quotes included), `value` what it means (a string without its
 * quotes and escapes), `column` the 1-based position of its first character. The `end` token sits
 * one past the last character.
 *
 * @example
 * const token: SelectionToken = { kind: "word", text: "raw/documents", value: "raw/documents", column: 5 };
 */
export interface SelectionToken {
  readonly kind: SelectionTokenKind;
  readonly text: string;
  readonly value: string;
  readonly column: number;
}

// Maps, not object literals: a word such as "constructor" must not find Object.prototype.
const PUNCTUATION: ReadonlyMap<string, SelectionTokenKind> = new Map<string, SelectionTokenKind>([
  [":", "colon"],
  ["=", "equals"],
  ["+", "plus"],
  ["(", "lparen"],
  [")", "rparen"],
]);

const KEYWORDS: ReadonlyMap<string, SelectionTokenKind> = new Map<string, SelectionTokenKind>([
  ["and", "and"],
  ["or", "or"],
  ["not", "not"],
]);

const WORD_CHAR = /[A-Za-z0-9_./*-]/;
const DIGITS = /^[0-9]+$/;
const WHITESPACE = /\s/;
const NULL_LITERAL = "<null>";

/**
 * Splits a selection into tokens, ending with an `end` token.
 *
 * Whitespace separates tokens and is otherwise ignored, as in Dagster's grammar. Inside a
 * double-quoted string a backslash takes the next character literally (`\"`, `\\`).
 *
 * @throws SelectionSyntaxError on a character that starts no token or an unterminated string.
 * @example
 * tokenizeSelection("2+key:a").map((t) => t.kind); // ["digits", "plus", "word", "colon", "word", "end"]
 */
export function tokenizeSelection(text: string): ReadonlyArray<SelectionToken> {
  const tokens: SelectionToken[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const start = i;
    if (WHITESPACE.test(ch)) {
      i++;
      continue;
    }
    const punctuation = PUNCTUATION.get(ch);
    if (punctuation !== undefined) {
      tokens.push(token(punctuation, ch, ch, start));
      i++;
    } else if (WORD_CHAR.test(ch)) {
      while (i < text.length && WORD_CHAR.test(text[i]!)) i++;
      const word = text.slice(start, i);
      tokens.push(token(wordKind(word), word, word, start));
    } else if (ch === '"') {
      i = readString(text, start, tokens);
    } else if (text.startsWith(NULL_LITERAL, i)) {
      tokens.push(token("null", NULL_LITERAL, NULL_LITERAL, start));
      i += NULL_LITERAL.length;
    } else {
      throw new SelectionSyntaxError(
        `unexpected ${JSON.stringify(ch)} at column ${start + 1} in ${quoteSelection(text, start + 1)}; ` +
          `quote a value with other characters than letters, digits and _ . / * -, as in owner:"team@example.com"`,
        text,
        start + 1,
      );
    }
  }
  tokens.push(token("end", "", "", text.length));
  return tokens;
}

function wordKind(word: string): SelectionTokenKind {
  const keyword = KEYWORDS.get(word.toLowerCase());
  if (keyword !== undefined) return keyword;
  if (word === "*") return "star";
  return DIGITS.test(word) ? "digits" : "word";
}

/** Reads the string that opens at `start`, pushes its token and returns the index after it. */
function readString(text: string, start: number, tokens: SelectionToken[]): number {
  let value = "";
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      tokens.push(token("string", text.slice(start, i + 1), value, start));
      return i + 1;
    }
    if (ch === "\\" && i + 1 < text.length) {
      value += text[i + 1];
      i += 2;
    } else {
      value += ch;
      i++;
    }
  }
  throw new SelectionSyntaxError(
    `unterminated string at column ${start + 1} in ${quoteSelection(text, start + 1)}; close it with a double quote`,
    text,
    start + 1,
  );
}

// Past this length an error quotes the part of the selection around the column, not all of it.
const QUOTED_MAX = 120;

/**
 * Quotes a selection for an error message: whole when short, else the part around `column`
 * with the selection's length, so that a generated selection of 100k characters still gives a
 * one-line message a reader can use.
 *
 * @example
 * quoteSelection("key:a and", 7); // '"key:a and"'
 */
export function quoteSelection(text: string, column: number): string {
  if (text.length <= QUOTED_MAX) return JSON.stringify(text);
  const from = Math.max(0, Math.min(column - 1 - QUOTED_MAX / 2, text.length - QUOTED_MAX));
  const to = from + QUOTED_MAX;
  return `${JSON.stringify(text.slice(from, to))} (characters ${from + 1} to ${to} of a selection of ${text.length})`;
}

function token(
  kind: SelectionTokenKind,
  text: string,
  value: string,
  index: number,
): SelectionToken {
  return Object.freeze({ kind, text, value, column: index + 1 });
}
