import { collapsePlaceholders, isDigit } from '../sql-tokens.js';
import { skipQuoted } from './statements.js';

/**
 * A normalised query fingerprint, with PostgreSQL's normalisation (src/protocols/postgres/
 * fingerprint.ts; the lexer is MySQL's own, the placeholder collapsing shared through
 * ../sql-tokens.ts): two statements that differ only in literals share it, which is what N+1,
 * redundant-call and unparameterised-SQL detection group on.
 *
 * - string ('…', "…" — a string in MySQL's default SQL mode), hex (X'…', 0x…), bit (b'…') and number
 *   literals become `?`; `?` placeholders stay `?`;
 * - lists of placeholders collapse: `IN (?, ?, ?)` and `VALUES (?, ?), (?, ?)` → one `?` tuple;
 * - comments (-- , #, /* … *\/) are dropped, whitespace (and NUL, a C string's terminator) folded to one space, and everything outside
 *   backquoted identifiers lower-cased (keywords and, for grouping, unquoted identifiers).
 *
 * It is a lexer, not a parser: it never fails, whatever the input.
 */
export function fingerprint(sql: string): string {
  const out: string[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\0') {
      i++;
      continue;
    }
    if ((c === '-' && sql[i + 1] === '-' && (i + 2 >= n || /\s/.test(sql[i + 2]!))) || c === '#') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
      continue;
    }
    // String literals, with the X'', B'', N'' and _charset'' introducers.
    if (c === "'" || c === '"' || (/[xXbBnN]/.test(c) && sql[i + 1] === "'" && !isIdentChar(sql[i - 1]))) {
      i = skipQuoted(sql, c === "'" || c === '"' ? i : i + 1);
      if (out[out.length - 1]?.startsWith('_')) out.pop(); // _utf8mb4'…'
      out.push('?');
      continue;
    }
    // Backquoted identifiers keep their case.
    if (c === '`') {
      const j = skipQuoted(sql, i);
      out.push(sql.slice(i, j));
      i = j;
      continue;
    }
    if (c === '?') {
      out.push('?');
      i++;
      continue;
    }
    // Numbers (not part of an identifier): 42, 3.14, .5, 1e10, 0x1F
    if ((isDigit(c) || (c === '.' && isDigit(sql[i + 1]))) && !isIdentChar(sql[i - 1])) {
      i++;
      while (i < n && (isIdentChar(sql[i]) || sql[i] === '.' || ((sql[i] === '+' || sql[i] === '-') && /[eE]/.test(sql[i - 1]!)))) i++;
      // A leading minus on a number is part of the literal after an operator or opening.
      const prev = out[out.length - 1];
      if (prev === '-' && (out.length === 1 || /^[(,=<>+*/-]$|^(?:and|or|not|in|values|select|where|then|else|when|return)$/.test(out[out.length - 2] ?? '('))) out.pop();
      out.push('?');
      continue;
    }
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j])) j++;
      out.push(sql.slice(i, j).toLowerCase());
      i = j;
      continue;
    }
    if (OP_CHARS.includes(c)) {
      let j = i + 1;
      while (j < n && OP_CHARS.includes(sql[j]!)) j++;
      if (j - i > 1 && (sql[j - 1] === '-' || sql[j - 1] === '+') && (isDigit(sql[j]) || (sql[j] === '.' && isDigit(sql[j + 1])))) j--;
      out.push(sql.slice(i, j));
      i = j;
      continue;
    }
    out.push(c);
    i++;
  }
  return join(collapsePlaceholders(out));
}

const OP_CHARS = '+-*/<>=~!@%^&|:';

/** Tokens with single spaces, none inside parentheses' edges, before commas, or around `.`. */
function join(t: string[]): string {
  let s = '';
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!;
    const prev = t[k - 1];
    const glue = k === 0 || tok === ',' || tok === ')' || tok === '.' || tok === ';' || prev === '(' || prev === '.';
    s += glue ? tok : ` ${tok}`;
  }
  return s;
}

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === '$' || c > '\u007f';
}

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && (isIdentStart(c) || isDigit(c));
}
