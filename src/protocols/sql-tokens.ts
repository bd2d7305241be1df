/**
 * What the SQL fingerprints of every SQL protocol share (postgres/fingerprint.ts,
 * mysql/fingerprint.ts): each has its own lexer, since the dialects quote, comment and cast
 * differently, but placeholder lists collapse the same way, so that redundant-call, n-plus-one
 * and unparameterised-sql see one statement whatever the list length.
 */

/** A parenthesised list of only placeholders becomes `(?)`; repeated `(?), (?)` tuples become one. */
export function collapsePlaceholders(t: string[]): string[] {
  const out: string[] = [];
  for (const tok of t) {
    out.push(tok);
    if (tok !== ')') continue;
    const open = out.lastIndexOf('(');
    if (open < 0) continue;
    const inner = out.slice(open + 1, out.length - 1);
    if (inner.length > 1 && inner.every((x, i) => (i % 2 === 0 ? x === '?' : x === ','))) out.splice(open + 1, inner.length, '?');
    const m = out.length;
    if (m >= 7 && out[m - 1] === ')' && out[m - 2] === '?' && out[m - 3] === '(' && out[m - 4] === ','
      && out[m - 5] === ')' && out[m - 6] === '?' && out[m - 7] === '(') out.length -= 4;
  }
  return out;
}

export function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}
