/**
 * Splits a multi-statement COM_QUERY (CLIENT_MULTI_STATEMENTS) at top-level semicolons, so each
 * result of the answer is reported with its own statement. MySQL's lexer: '…' and "…" strings
 * with backslash escapes and doubled quotes, `…` identifiers, and -- , # and /* … *\/ comments
 * (MySQL reference manual, "String Literals", "Comments"). A lexer, not a parser: it never fails.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  const n = sql.length;
  let start = 0;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"' || c === '`') {
      i = skipQuoted(sql, i);
    } else if ((c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /\s/.test(sql[i + 2]!))) || c === '#') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === ';') {
      const s = sql.slice(start, i).trim();
      if (s) out.push(s);
      start = ++i;
    } else i++;
  }
  const last = sql.slice(start).trim();
  if (last) out.push(last);
  return out;
}

/** Index just past the quoted run starting at `i` (or the end when it is not closed). */
export function skipQuoted(sql: string, i: number): number {
  const q = sql[i]!;
  const n = sql.length;
  i++;
  while (i < n) {
    const c = sql[i]!;
    if (c === '\\' && q !== '`') {
      i += 2;
      continue;
    }
    if (c === q) {
      if (sql[i + 1] === q) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return n;
}
