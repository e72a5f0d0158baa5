/**
 * Splits a SQL script into its statements, without comments, each trimmed.
 *
 * Semicolons inside quoted strings, quoted identifiers, dollar-quoted bodies and comments do not
 * end a statement. Used to read what the migrations create, not to run them.
 *
 * @example
 * splitSqlStatements("create table a (x int); -- done\ncreate view v as select 1;");
 * // ["create table a (x int)", "create view v as select 1"]
 */
export function splitSqlStatements(script: string): ReadonlyArray<string> {
  const statements: string[] = [];
  let current = "";
  let i = 0;
  const flush = () => {
    const text = current.replace(/\s+/g, " ").trim();
    if (text !== "") statements.push(text);
    current = "";
  };
  while (i < script.length) {
    const ch = script[i]!;
    if (script.startsWith("--", i)) {
      const end = script.indexOf("\n", i);
      i = end < 0 ? script.length : end;
      current += " ";
    } else if (script.startsWith("/*", i)) {
      const end = script.indexOf("*/", i + 2);
      i = end < 0 ? script.length : end + 2;
      current += " ";
    } else if (ch === "'" || ch === '"') {
      const end = closingQuote(script, i, ch);
      current += script.slice(i, end);
      i = end;
    } else if (ch === "$") {
      const tag = /^\$[A-Za-z_]*\$/.exec(script.slice(i, i + 64))?.[0];
      if (tag === undefined) {
        current += ch;
        i++;
      } else {
        const end = script.indexOf(tag, i + tag.length);
        const stop = end < 0 ? script.length : end + tag.length;
        current += script.slice(i, stop);
        i = stop;
      }
    } else if (ch === ";") {
      flush();
      i++;
    } else {
      current += ch;
      i++;
    }
  }
  flush();
  return statements;
}

/** The index just past the quote that closes the one at `start` (a doubled quote escapes). */
function closingQuote(script: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < script.length) {
    if (script[i] === quote) {
      if (script[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return script.length;
}

/**
 * Splits `text` at the commas that are not inside parentheses or quotes: the items of a
 * `create table` body, the clauses of an `alter table`.
 *
 * @example
 * splitTopLevel("a int, b numeric(10, 2), check (a > 0)"); // ["a int", "b numeric(10, 2)", "check (a > 0)"]
 */
export function splitTopLevel(text: string): ReadonlyArray<string> {
  const items: string[] = [];
  let depth = 0;
  let start = 0;
  for (const i of unquoted(text, 0)) {
    const ch = text[i];
    if (ch === "(") depth++;
    else if (ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      items.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last !== "") items.push(last);
  return items;
}

/** The text between the parenthesis at `open` and the one that closes it, and where that is. */
export function parenthesized(text: string, open: number): { inner: string; end: number } | null {
  let depth = 0;
  for (const i of unquoted(text, open)) {
    const ch = text[i];
    if (ch === "(") depth++;
    else if (ch === ")") {
      depth--;
      if (depth === 0) return { inner: text.slice(open + 1, i), end: i };
    }
  }
  return null;
}

/** The positions in `text` from `from` on that are outside quoted strings and identifiers. */
function* unquoted(text: string, from: number): Generator<number> {
  let i = from;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "'" || ch === '"') {
      i = closingQuote(text, i, ch);
      continue;
    }
    yield i;
    i++;
  }
}
