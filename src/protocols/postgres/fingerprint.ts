/**
 * A normalised query fingerprint: two statements that differ only in literals share it, which is
 * what N+1 and unparameterised-SQL detection group on.
 *
 * - string, number, bit-string and dollar-quoted literals become `?`; so do `$n` parameters;
 * - lists of placeholders collapse: `IN (?, ?, ?)` and `VALUES (?, ?), (?, ?)` → one `?` tuple;
 * - comments are dropped, whitespace folded to one space, and everything outside double-quoted
 *   identifiers lower-cased (SQL keywords and unquoted identifiers are case-insensitive).
 *
 * It is a lexer, not a parser: it never fails, whatever the input.
 */
import { collapsePlaceholders, isDigit } from '../sql-tokens.js';
export function fingerprint(sql: string): string {
  const out: string[] = [];
  const n = sql.length;
  let i = 0;
  const push = (t: string) => out.push(t);
  while (i < n) {
    const c = sql[i]!;
    // Whitespace
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    // Comments: -- to end of line; /* ... */ (nesting allowed in PostgreSQL)
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') { depth++; i += 2; } else if (sql[i] === '*' && sql[i + 1] === '/') { depth--; i += 2; } else i++;
      }
      continue;
    }
    // String literals, with E'', B'', X'', N'' prefixes; '' doubles a quote; E'' allows \'
    if (c === "'" || (/[eEbBxXnN]/.test(c) && sql[i + 1] === "'" && !isIdentChar(sql[i - 1]))) {
      const escapes = c === 'e' || c === 'E';
      i += c === "'" ? 1 : 2;
      while (i < n) {
        if (escapes && sql[i] === '\\') { i += 2; continue; }
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") { i += 2; continue; }
          i++;
          break;
        }
        i++;
      }
      push('?');
      continue;
    }
    // Dollar-quoted strings: $tag$ ... $tag$
    if (c === '$' && !isIdentChar(sql[i - 1])) {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const tag = m[0];
        const end = sql.indexOf(tag, i + tag.length);
        i = end < 0 ? n : end + tag.length;
        push('?');
        continue;
      }
      // Positional parameter $1
      const p = /^\$\d+/.exec(sql.slice(i, i + 12));
      if (p) {
        i += p[0].length;
        push('?');
        continue;
      }
    }
    // Quoted identifiers keep their case
    if (c === '"') {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === '"') {
          if (sql[j + 1] === '"') { j += 2; continue; }
          break;
        }
        j++;
      }
      push(sql.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    // Numbers (not part of an identifier): 42, 3.14, .5, 1e10, 0x1F
    if ((isDigit(c) || (c === '.' && isDigit(sql[i + 1]))) && !isIdentChar(sql[i - 1])) {
      i++;
      while (i < n && (isIdentChar(sql[i]) || sql[i] === '.' || ((sql[i] === '+' || sql[i] === '-') && /[eE]/.test(sql[i - 1]!)))) i++;
      // A leading minus on a number is part of the literal after an operator or opening.
      const prev = out[out.length - 1];
      if (prev === '-' && (out.length === 1 || /^[(,=<>+*/-]$|^(?:and|or|not|in|values|select|where|then|else|when|return)$/.test(out[out.length - 2] ?? '('))) out.pop();
      push('?');
      continue;
    }
    // Identifiers and keywords
    if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j])) j++;
      push(sql.slice(i, j).toLowerCase());
      i = j;
      continue;
    }
    // The cast operator
    if (c === ':' && sql[i + 1] === ':') {
      push('::');
      i += 2;
      continue;
    }
    // Operators: a run of operator characters is one token (PostgreSQL lexer, §4.1.3), except that
    // a trailing sign before a number belongs to the number ("x=-1").
    if (OP_CHARS.includes(c)) {
      let j = i + 1;
      while (j < n && OP_CHARS.includes(sql[j]!)) j++;
      if (j - i > 1 && (sql[j - 1] === '-' || sql[j - 1] === '+') && (isDigit(sql[j]) || (sql[j] === '.' && isDigit(sql[j + 1])))) j--;
      push(sql.slice(i, j));
      i = j;
      continue;
    }
    push(c);
    i++;
  }
  return join(collapsePlaceholders(out));
}

const OP_CHARS = '+-*/<>=~!@#%^&|`';

/** Tokens with single spaces, none inside parentheses' edges, before commas, or around . and :: */
function join(t: string[]): string {
  let s = '';
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!;
    const prev = t[k - 1];
    const glue = k === 0 || tok === ',' || tok === ')' || tok === '.' || tok === '::' || tok === ';' || tok === ':'
      || prev === '(' || prev === '.' || prev === '::' || prev === '[';
    s += glue ? tok : ` ${tok}`;
  }
  return s;
}

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c > '\u007f';
}

function isIdentChar(c: string | undefined): boolean {
  return c !== undefined && (isIdentStart(c) || isDigit(c) || c === '$');
}
