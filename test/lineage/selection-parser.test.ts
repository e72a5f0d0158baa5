import { describe, expect, it } from "vitest";
import { SelectionSyntaxError } from "../../src/errors.js";
import { formatSelection } from "../../src/lineage/selection-formatter.js";
import { MAX_SELECTION_NESTING, parseSelection } from "../../src/lineage/selection-parser.js";
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
  ["key:sinks", 'key:"sinks"'],
  ["key:group", 'key:"group"'],
  ["sinks2", 'key:"sinks2"'],
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
  [
    "not",
    1,
    'unexpected keyword "not" at column 1 in "not"; write key:"not" for the asset named "not"',
  ],
  ["not key:a and", 11, 'unexpected "and" at column 11 in "not key:a and"; expected a selection'],
  // the grammar's keywords are never bare keys, as in Dagster
  [
    "sinks",
    1,
    'unexpected keyword "sinks" at column 1 in "sinks"; write key:sinks for the asset named "sinks", or sinks(...) for the sinks of a selection',
  ],
  ["roots", 1, 'write key:roots for the asset named "roots", or roots(...)'],
  [
    "key",
    1,
    'unexpected keyword "key" at column 1 in "key"; write key:key for the asset named "key"',
  ],
  [
    "group",
    1,
    'unexpected keyword "group" at column 1 in "group"; write key:group for the asset named "group", or group:VALUE to select by group',
  ],
  ["tag", 1, 'write key:tag for the asset named "tag", or tag:VALUE'],
  ["owner", 1, 'write key:owner for the asset named "owner", or owner:VALUE'],
  ["kind", 1, 'write key:kind for the asset named "kind", or kind:VALUE'],
  ["Sinks", 1, 'unexpected keyword "Sinks" at column 1 in "Sinks"; write key:Sinks'],
  ["sinks+", 1, 'unexpected keyword "sinks" at column 1 in "sinks+"; write key:sinks'],
  ["2+roots", 3, 'unexpected keyword "roots" at column 3 in "2+roots"; write key:roots'],
  ["key:a or group", 10, 'unexpected keyword "group" at column 10 in "key:a or group"'],
  [
    "and",
    1,
    'unexpected keyword "and" at column 1 in "and"; write key:"and" for the asset named "and", or put "and" between two selections',
  ],
  ["OR", 1, 'unexpected keyword "OR" at column 1 in "OR"; write key:"OR" for the asset named "OR"'],
  [" not ", 2, 'unexpected keyword "not" at column 2 in " not "; write key:"not"'],
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

/** The error `parseSelection(selection)` throws. */
function syntaxErrorOf(selection: string): SelectionSyntaxError {
  try {
    parseSelection(selection);
  } catch (error) {
    expect(error).toBeInstanceOf(SelectionSyntaxError);
    return error as SelectionSyntaxError;
  }
  throw new Error(`${selection.slice(0, 40)} parsed`);
}

describe("parseSelection on generated selections", () => {
  const n = MAX_SELECTION_NESTING;

  it("parses parentheses, nots and functions nested up to the limit", () => {
    const parens = `${"(".repeat(n)}key:a${")".repeat(n)}`;
    expect(formatSelection(parseSelection(parens))).toBe('key:"a"');
    const nots = `${"not ".repeat(n)}key:a`;
    expect(formatSelection(parseSelection(nots))).toBe(`${"not ".repeat(n)}key:"a"`);
    const sinks = `${"sinks(".repeat(n)}key:a${")".repeat(n)}`;
    expect(formatSelection(parseSelection(sinks))).toBe(
      `${"sinks(".repeat(n)}key:"a"${")".repeat(n)}`,
    );
  });

  it.each([
    ["100k open parentheses", "(".repeat(100_000), n + 1],
    ["one parenthesis past the limit", `${"(".repeat(n + 1)}key:a${")".repeat(n + 1)}`, n + 1],
    ["100k nots", `${"not ".repeat(100_000)}key:a`, 4 * n + 1],
    ["100k nested sinks()", `${"sinks(".repeat(100_000)}key:a${")".repeat(100_000)}`, 6 * n + 1],
    ["nots inside parentheses", `${"(not ".repeat(60_000)}key:a${")".repeat(60_000)}`, 5 * 50 + 1],
  ])(
    "refuses %s with a short one-line message naming the limit and the column",
    (_name, selection, column) => {
      const error = syntaxErrorOf(selection);
      expect(error.code).toBe("bad_selection");
      expect(error.column).toBe(column);
      expect(error.message).toContain(
        `selection nests more than ${n} levels deep at column ${column} in "`,
      );
      expect(error.message).toContain(`of a selection of ${selection.length})`);
      expect(error.message).toContain("remove redundant parentheses");
      expect(error.message).not.toContain("\n");
      expect(error.message.length).toBeLessThan(400);
    },
  );

  it("parses and prints a chain of 100k terms joined by or, and by and", () => {
    const terms = Array.from({ length: 100_000 }, (_, i) => `key:a${i}`);
    for (const op of ["or", "and"]) {
      const ast = parseSelection(terms.join(` ${op} `));
      expect(ast.type).toBe(op);
      const canonical = formatSelection(ast);
      expect(canonical.startsWith(`key:"a0" ${op} key:"a1" ${op} key:"a2"`)).toBe(true);
      expect(canonical.endsWith(`${op} key:"a99999"`)).toBe(true);
    }
  });

  it("quotes only the part of a long selection around the column it names", () => {
    const selection = `${"key:a or ".repeat(20_000)}key:b or or key:c`;
    const error = syntaxErrorOf(selection);
    expect(error.column).toBe(selection.indexOf("or or") + 4);
    expect(error.message).toMatch(/^unexpected "or" at column \d+ in "[^"]*key:b or or key:c"/);
    expect(error.message.length).toBeLessThan(400);
    expect(error.selection).toBe(selection);
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
