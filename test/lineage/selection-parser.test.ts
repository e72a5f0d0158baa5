import { describe, expect, it } from "vitest";
import { SelectionSyntaxError } from "../../src/errors.js";
import { formatSelection } from "../../src/lineage/selection-formatter.js";
import { parseSelection } from "../../src/lineage/selection-parser.js";
import { tokenizeSelection } from "../../src/lineage/selection-tokenizer.js";

/** Each selection and the canonical form it parses to (fully quoted, minimal parentheses). */
const PARSES: ReadonlyArray<readonly [string, string]> = [
  // terms
  ["*", "*"],
  ["key:raw/documents", 'key:"raw/documents"'],
  ['key:"raw/documents"', 'key:"raw/documents"'],
  ["key:raw/*", 'key:"raw/*"'],
  ["key:*", 'key:"*"'],
  ["key:2024", 'key:"2024"'],
  ["group:raw", 'group:"raw"'],
  ["group:<null>", "group:<null>"],
  ["tag:pii", 'tag:"pii"'],
  ["tag:tier=gold", 'tag:"tier"="gold"'],
  ['tag:"tier"="gold tier"', 'tag:"tier"="gold tier"'],
  ["tag:<null>", "tag:<null>"],
  ["tag:pii=<null>", 'tag:"pii"'],
  ["owner:<null>", "owner:<null>"],
  ['owner:"alice@example.com"', 'owner:"alice@example.com"'],
  ["kind:python", 'kind:"python"'],
  ["kind:<null>", "kind:<null>"],
  ["raw/documents", 'key:"raw/documents"'],
  ["raw/*", 'key:"raw/*"'],
  ["sinks", 'key:"sinks"'],
  ["sinks(*)", "sinks(*)"],
  ["roots(group:raw)", 'roots(group:"raw")'],
  // quoting and escapes
  ['key:"a\\"b"', 'key:"a\\"b"'],
  ['owner:"back\\\\slash"', 'owner:"back\\\\slash"'],
  ['key:"and"', 'key:"and"'],
  // traversals
  ["+key:a", '+key:"a"'],
  ["key:a+", 'key:"a"+'],
  ["+key:a+", '+key:"a"+'],
  ["2+key:a", '2+key:"a"'],
  ["key:a+3", 'key:"a"+3'],
  ["2+key:a+3", '2+key:"a"+3'],
  ["0+key:a", '0+key:"a"'],
  ["2 + key:a + 3", '2+key:"a"+3'],
  ["raw/documents+", 'key:"raw/documents"+'],
  ["1+sinks(*)+", "1+sinks(*)+"],
  ["+(key:a or key:b)", '+(key:"a" or key:"b")'],
  // precedence: or < and < not
  ["key:a or key:b and key:c", 'key:"a" or key:"b" and key:"c"'],
  ["(key:a or key:b) and key:c", '(key:"a" or key:"b") and key:"c"'],
  ["not key:a and key:b", 'not key:"a" and key:"b"'],
  ["not (key:a and key:b)", 'not (key:"a" and key:"b")'],
  ["not not key:a", 'not not key:"a"'],
  ["key:a and key:b or key:c and key:d", 'key:"a" and key:"b" or key:"c" and key:"d"'],
  ["key:a or (key:b or key:c)", 'key:"a" or (key:"b" or key:"c")'],
  ["not key:a+", 'not key:"a"+'],
  // keywords in any case
  ["key:a AND key:b", 'key:"a" and key:"b"'],
  ["key:a Or key:b", 'key:"a" or key:"b"'],
  ["NoT key:a", 'not key:"a"'],
  ["SINKS(key:a)", 'sinks(key:"a")'],
];

/** Each invalid selection, the 1-based column its error names, and the message. */
const ERRORS: ReadonlyArray<readonly [string, number, string]> = [
  [
    "key:a key:b",
    7,
    'unexpected "key" at column 7 in "key:a key:b"; expected "and", "or" or the end of the selection',
  ],
  ["key:a and", 7, 'unexpected "and" at column 7 in "key:a and"; expected a selection after "and"'],
  ["key:a or or key:b", 10, 'unexpected "or" at column 10'],
  ["not", 1, 'unexpected "not" at column 1 in "not"; expected a selection after "not"'],
  ["**key:a", 1, 'unexpected "**key" at column 1 in "**key:a"; "*" is not a traversal'],
  ["+", 1, 'unexpected "+" at column 1 in "+"; expected a selection after "+"'],
  ["++key:a", 2, 'unexpected "+" at column 2 in "++key:a"'],
  ["*+", 2, 'unexpected "+" at column 2 in "*+"; "*" already selects every asset'],
  ["+*", 2, 'unexpected "*" at column 2 in "+*"'],
  ["key:a+2+", 8, 'unexpected "+" at column 8'],
  [
    "tag:foo=",
    9,
    'unexpected end of selection at column 9 in "tag:foo="; expected a value after "="',
  ],
  ["tag:=x", 5, 'unexpected "=" at column 5 in "tag:=x"; expected a value after "tag:"'],
  ["key:", 5, 'unexpected end of selection at column 5 in "key:"; expected a value after "key:"'],
  ["key:and", 5, 'quote a value that is a keyword, as in key:"and"'],
  ["key:<null>", 5, 'unexpected "<null>" at column 5 in "key:<null>"'],
  ["group:a=b", 8, 'unexpected "=" at column 8'],
  [
    "owner:a@b.c",
    8,
    'unexpected "@" at column 8 in "owner:a@b.c"; quote a value with other characters',
  ],
  ["key:<nul>", 5, 'unexpected "<" at column 5'],
  [
    "notafunction()",
    1,
    'unknown function "notafunction" at column 1 in "notafunction()"; use sinks(...) or roots(...)',
  ],
  [
    "color:red",
    1,
    'unknown attribute "color" at column 1 in "color:red"; use key, group, tag, owner or kind',
  ],
  [
    'key:"raw/documents',
    5,
    'unterminated string at column 5 in "key:\\"raw/documents"; close it with a double quote',
  ],
  ["", 1, 'empty selection at column 1 in ""'],
  ["   ", 1, 'empty selection at column 1 in "   "'],
  ["(key:a", 7, 'expected "and", "or" or ")" to close the "(" at column 1'],
  ["sinks(key:a", 12, 'expected "and", "or" or ")" to close the "(" at column 6'],
  ["key:a)", 6, 'unexpected ")" at column 6'],
  ["()", 2, 'unexpected ")" at column 2 in "()"; expected a selection after "("'],
  ['"raw/documents"', 1, 'write an attribute before a quoted value, as in key:"raw/documents"'],
];

describe("parseSelection", () => {
  it.each(PARSES)("parses %j as %s", (selection, canonical) => {
    expect(formatSelection(parseSelection(selection))).toBe(canonical);
  });

  it.each(PARSES)("reads the canonical form of %j back to the same tree", (selection) => {
    const ast = parseSelection(selection);
    expect(parseSelection(formatSelection(ast))).toEqual(ast);
  });

  it.each(ERRORS)("rejects %j at column %i", (selection, column, message) => {
    let error: unknown;
    try {
      parseSelection(selection);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SelectionSyntaxError);
    const syntaxError = error as SelectionSyntaxError;
    expect(syntaxError.code).toBe("bad_selection");
    expect(syntaxError.column).toBe(column);
    expect(syntaxError.selection).toBe(selection);
    expect(syntaxError.message).toContain(message);
  });

  it("builds a tree of depths, operators and attribute values", () => {
    expect(parseSelection("2+tag:tier=gold+ and not owner:<null>")).toEqual({
      type: "and",
      left: {
        type: "traversal",
        operand: { type: "tag", key: "tier", value: "gold" },
        up: 2,
        down: "all",
      },
      right: { type: "not", operand: { type: "owner", value: null } },
    });
  });

  it("returns a frozen tree", () => {
    const ast = parseSelection("not key:a");
    expect(Object.isFrozen(ast)).toBe(true);
    expect(ast.type === "not" && Object.isFrozen(ast.operand)).toBe(true);
  });
});

describe("tokenizeSelection", () => {
  it("gives each token its 1-based column and the end token one past the input", () => {
    const tokens = tokenizeSelection('2+key:"a b" or x');
    expect(tokens.map((t) => [t.kind, t.value, t.column])).toEqual([
      ["digits", "2", 1],
      ["plus", "+", 2],
      ["word", "key", 3],
      ["colon", ":", 6],
      ["string", "a b", 7],
      ["or", "or", 13],
      ["word", "x", 16],
      ["end", "", 17],
    ]);
  });

  it("reads <null> as its own token and keeps the written text of strings", () => {
    const tokens = tokenizeSelection('owner:<null> "a\\"b"');
    expect(tokens.map((t) => [t.kind, t.text])).toEqual([
      ["word", "owner"],
      ["colon", ":"],
      ["null", "<null>"],
      ["string", '"a\\"b"'],
      ["end", ""],
    ]);
  });
});
