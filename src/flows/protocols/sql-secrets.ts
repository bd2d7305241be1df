/**
 * Passwords written into SQL text (CREATE/ALTER USER … IDENTIFIED BY 'pw', SET PASSWORD = 'pw',
 * GRANT … IDENTIFIED BY 'pw', PostgreSQL's CREATE/ALTER ROLE … PASSWORD 'pw') replaced by a
 * redactor's keyed-hash token, kept a SQL string literal: '[redacted:1a2b3c4d5e6f]'. Shared by the
 * MySQL and PostgreSQL record modules.
 *
 * A string literal is a secret when it follows, in order of significant tokens:
 * - `IDENTIFIED BY`, `IDENTIFIED WITH <plugin> BY|AS`, and `REPLACE` within such a clause (MySQL's
 *   current password);
 * - `PASSWORD`, `PASSWORD(`, `PASSWORD =`, and `PASSWORD FOR <user> =` (the user is not a secret).
 * Any other token in between disarms (PASSWORD EXPIRE, PASSWORD NULL, SELECT password FROM …).
 * Comments, quoted identifiers and other literals are skipped, so a keyword inside them arms
 * nothing. The text is scanned once and never throws; an unterminated literal (SQL cut at the
 * decoder's limit) is a secret to the end.
 */

export type SqlDialect = 'mysql' | 'postgres';

/** Cheap test first: most statements name neither keyword. */
const MAYBE = /password|identified/i;

/**
 * `armed`: the next literal is a secret. `for`: in PASSWORD FOR <user>, waiting for '='.
 * `identified`: after IDENTIFIED, waiting for BY, AS or WITH. `with`: waiting for the plugin's
 * name. `plugin`: after it, waiting for BY or AS.
 */
type State = 'none' | 'armed' | 'for' | 'identified' | 'with' | 'plugin';

export function redactSqlSecrets(sql: string, token: (value: string) => string, dialect: SqlDialect): string {
  if (!MAYBE.test(sql)) return sql;
  const my = dialect === 'mysql';
  const n = sql.length;
  let out = '';
  let copied = 0;
  let state: State = 'none';
  /** Inside an IDENTIFIED … clause (for REPLACE 'current'), until ',' or ';'. */
  let clause = false;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    // Whitespace and comments: not tokens.
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') { i++; continue; }
    if (c === '-' && next === '-') { i = lineEnd(sql, i); continue; }
    if (c === '#' && my) { i = lineEnd(sql, i); continue; }
    if (c === '/' && next === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
      continue;
    }
    // String literals, with their prefixes: E'…' (PostgreSQL), N'…', _utf8mb4'…' (MySQL, via the word rule below).
    const quote = c === "'" || (c === '"' && my) ? c : undefined;
    const ePrefix = !my && (c === 'E' || c === 'e') && next === "'";
    if (quote !== undefined || ePrefix) {
      const q = ePrefix ? "'" : quote!;
      const backslash = my || ePrefix;
      const start = i;
      const { end, value } = literal(sql, ePrefix ? i + 1 : i, q, backslash);
      if (state === 'armed') {
        out += sql.slice(copied, start) + `'${token(value)}'`;
        copied = end;
      }
      state = afterName(state);
      i = end;
      continue;
    }
    if (c === '$' && !my) {
      // Dollar quoting: $tag$ … $tag$ (a password may be written so too).
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const tag = m[0];
        const e = sql.indexOf(tag, i + tag.length);
        const end = e < 0 ? n : e + tag.length;
        if (state === 'armed') {
          out += sql.slice(copied, i) + `'${token(sql.slice(i + tag.length, e < 0 ? n : e))}'`;
          copied = end;
        }
        state = afterName(state);
        i = end;
        continue;
      }
    }
    // Quoted identifiers: `x` (MySQL), "x" (PostgreSQL). A user or plugin name; never armed by.
    if (c === '`' || (c === '"' && !my)) {
      const e = sql.indexOf(c, i + 1);
      i = e < 0 ? n : e + 1;
      state = afterName(state);
      continue;
    }
    if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql[j]!)) j++;
      const w = sql.slice(i, j).toUpperCase();
      i = j;
      // A charset introducer (_utf8mb4'pw') or N'pw' keeps the literal armed.
      if ((w.startsWith('_') || w === 'N') && sql[j] === "'" && state === 'armed') continue;
      state = afterWord(state, w, clause);
      if (w === 'IDENTIFIED') clause = true;
      continue;
    }
    // Punctuation.
    if (c === '(' && state === 'armed') { i++; continue; }
    if (c === '=' && (state === 'armed' || state === 'for')) { state = 'armed'; i++; continue; }
    if (c === ':' && next === '=' && (state === 'armed' || state === 'for')) { state = 'armed'; i += 2; continue; }
    if (state === 'for' && (c === '@' || c === '.' || c === '%' || c === '(' || c === ')')) { i++; continue; } // 'u'@'host', CURRENT_USER()
    if (c === ',' || c === ';') clause = false;
    state = 'none';
    i++;
  }
  return copied === 0 ? sql : out + sql.slice(copied);
}

/** After a literal, dollar-quoted string or quoted identifier that was not redacted: a user's or plugin's name, or nothing. */
function afterName(s: State): State {
  return s === 'for' ? 'for' : s === 'with' ? 'plugin' : 'none';
}

function afterWord(s: State, w: string, clause: boolean): State {
  if (w === 'PASSWORD') return 'armed';
  if (w === 'IDENTIFIED') return 'identified';
  if ((s === 'identified' || s === 'plugin') && (w === 'BY' || w === 'AS')) return 'armed';
  if (s === 'identified' && w === 'WITH') return 'with';
  if (s === 'with') return 'plugin';
  if ((s === 'armed' && w === 'FOR') || s === 'for') return 'for';
  if (clause && w === 'REPLACE') return 'armed';
  return 'none';
}

function lineEnd(sql: string, i: number): number {
  const e = sql.indexOf('\n', i);
  return e < 0 ? sql.length : e + 1;
}

function isWordChar(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_' || c > '\x7f';
}

/** The literal opening at `i` (its quote `q`): where it ends and its value, '' / "" doubled and (MySQL, E'') backslash escapes undone. */
function literal(sql: string, i: number, q: string, backslash: boolean): { end: number; value: string } {
  let value = '';
  let j = i + 1;
  const n = sql.length;
  while (j < n) {
    const c = sql[j]!;
    if (backslash && c === '\\' && j + 1 < n) {
      value += sql[j + 1];
      j += 2;
      continue;
    }
    if (c === q) {
      if (sql[j + 1] === q) {
        value += q;
        j += 2;
        continue;
      }
      return { end: j + 1, value };
    }
    value += c;
    j++;
  }
  return { end: n, value };
}
