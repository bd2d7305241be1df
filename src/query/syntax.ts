/**
 * A recogniser for CEL's grammar (cel-spec langdef.md, "Syntax"), run before @bufbuild/cel parses
 * the expression. It builds nothing; it exists to say exactly where a bad expression goes wrong
 * (the bundled parser often points at the start of the last operand instead), and to bound
 * nesting, which the bundled parser would otherwise meet as a stack overflow.
 */

import { FilterError } from './error.js';

/** Brackets, calls and unary operators nest at most this deep. */
export const MAX_NESTING = 100;

type Kind = 'ident' | 'number' | 'string' | 'punct' | 'end';
interface Token { kind: Kind; text: string; pos: number }

const PUNCT = ['||', '&&', '==', '!=', '<=', '>=', '<', '>', '!', '+', '-', '*', '/', '%', '?', ':', '.', ',', '(', ')', '[', ']', '{', '}'];
const NOT_OPERATORS: Record<string, string> = { '=': "'=' is not an operator: compare with '=='", '&': "'&' is not an operator: use '&&'", '|': "'|' is not an operator: use '||'" };
const RESERVED = new Set(['as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if', 'import', 'let', 'loop', 'package', 'namespace', 'return', 'var', 'void', 'while']);
const LITERAL_WORDS = new Set(['true', 'false', 'null']);
const RELATIONS = new Set(['<', '<=', '>=', '>', '==', '!=']);
const CLOSER: Record<string, string> = { '(': ')', '[': ']', '{': '}' };
/** Binary operators by precedence, loosest first. */
const LEVELS: ((t: Token) => boolean)[] = [
  (t) => t.kind === 'punct' && t.text === '||',
  (t) => t.kind === 'punct' && t.text === '&&',
  (t) => (t.kind === 'punct' && RELATIONS.has(t.text)) || (t.kind === 'ident' && t.text === 'in'),
  (t) => t.kind === 'punct' && (t.text === '+' || t.text === '-'),
  (t) => t.kind === 'punct' && (t.text === '*' || t.text === '/' || t.text === '%'),
];

function lex(src: string, comments: [number, number][]): Token[] {
  const fail = (pos: number, what: string): never => { throw new FilterError(src, pos, what); };
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f') { i++; continue; }
    if (src.startsWith('//', i)) {
      const from = i;
      while (i < src.length && src[i] !== '\n') i++;
      comments.push([from, i]);
      continue;
    }
    const start = i;
    const str = /^(?:[rR][bB]?|[bB][rR]?)?("""|'''|"|')/.exec(src.slice(i, i + 5));
    if (str) {
      const quote = str[1]!;
      const raw = /[rR]/.test(str[0].slice(0, -quote.length));
      i += str[0].length;
      while (!src.startsWith(quote, i)) {
        if (i >= src.length || (quote.length === 1 && (src[i] === '\n' || src[i] === '\r'))) fail(start, 'this string is not closed');
        i += !raw && src[i] === '\\' ? 2 : 1;
      }
      i += quote.length;
      out.push({ kind: 'string', text: src.slice(start, i), pos: start });
      continue;
    }
    const num = /^(?:0[xX][0-9a-fA-F]+[uU]?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)/.exec(src.slice(i));
    if (num) {
      if (/^0[xX]$/.test(src.slice(i, i + 2)) && !/[0-9a-fA-F]/.test(src[i + 2] ?? '')) fail(i, 'a hexadecimal number needs digits after 0x');
      i += num[0].length;
      out.push({ kind: 'number', text: num[0], pos: start });
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (id) {
      i += id[0].length;
      out.push({ kind: 'ident', text: id[0], pos: start });
      continue;
    }
    const p = PUNCT.find((x) => src.startsWith(x, i));
    if (p === undefined) fail(i, NOT_OPERATORS[c] ?? `unexpected character ${JSON.stringify(c)}`);
    i += p!.length;
    out.push({ kind: 'punct', text: p!, pos: start });
  }
  out.push({ kind: 'end', text: '', pos: src.length });
  return out;
}

/**
 * Throws a FilterError at the first place where `src` is not a CEL expression. Returns `src` as the
 * bundled parser can read it, every token in its place: comments blanked out (the parser rejects
 * one at the end of the expression, or two in a row), and empty argument lists closed up.
 */
export function checkSyntax(src: string): string {
  const comments: [number, number][] = [];
  const toks = lex(src, comments);
  let at = 0;
  let depth = 0;
  const peek = (): Token => toks[at]!;
  const is = (text: string): boolean => peek().kind === 'punct' && peek().text === text;
  const describe = (t: Token): string => (t.kind === 'end' ? 'the end of the expression' : `'${t.text}'`);
  const fail = (t: Token, what: string): never => { throw new FilterError(src, t.pos, what); };
  const enter = (t: Token): void => { if (++depth > MAX_NESTING) fail(t, `the expression nests more than ${MAX_NESTING} levels deep`); };

  function close(open: Token): void {
    const want = CLOSER[open.text]!;
    if (!is(want)) fail(peek(), `expected '${want}' to close the '${open.text}' at position ${open.pos}, found ${describe(peek())}`);
    at++;
  }
  /** `a, b, c` up to the closer of `open`, which it consumes; a trailing comma only where allowed. */
  function items(open: Token, item: () => void, trailingComma: boolean): void {
    enter(open);
    const want = CLOSER[open.text]!;
    // `[,]` and `{,}`: the grammar allows the trailing comma of an empty list or map.
    if (trailingComma && is(',') && toks[at + 1]?.text === want) at++;
    while (!is(want)) {
      item();
      if (!is(',')) break;
      at++;
      if (is(want) && !trailingComma) fail(peek(), `expected a value after ',', found '${want}'`);
    }
    close(open);
    depth--;
  }
  function name(what: string): Token {
    const t = peek();
    if (t.kind !== 'ident') fail(t, `expected ${what}, found ${describe(t)}`);
    if (t.text === 'in' || LITERAL_WORDS.has(t.text)) fail(t, `'${t.text}' is a reserved word, not ${what}`);
    at++;
    return t;
  }
  function primary(): void {
    const t = peek();
    if (t.kind === 'number' || t.kind === 'string') { at++; return; }
    if (t.kind === 'ident') {
      if (LITERAL_WORDS.has(t.text)) { at++; return; }
      if (t.text === 'in' || RESERVED.has(t.text)) fail(t, `'${t.text}' is a reserved word and cannot be a name`);
      // @bufbuild/cel 0.6.1 reads `trueish` as `true` followed by `ish`.
      if (/^(true|false)./.test(t.text)) fail(t, `a name cannot start with 'true' or 'false' here (a limit of the CEL parser): '${t.text}'`);
      at++;
      if (is('(')) items(toks[at++]!, expr, false);
      return;
    }
    if (t.kind === 'punct') {
      if (t.text === '.') { at++; name('a name after the leading dot'); if (is('(')) items(toks[at++]!, expr, false); return; }
      if (t.text === '(') { at++; enter(t); expr(); close(t); depth--; return; }
      if (t.text === '[') { at++; items(t, expr, true); return; }
      if (t.text === '{') { at++; items(t, mapEntry, true); return; }
    }
    fail(t, t.kind === 'end' ? 'the expression ends where a value was expected' : `unexpected ${describe(t)} where a value was expected`);
  }
  function mapEntry(): void {
    expr();
    if (!is(':')) fail(peek(), `expected ':' between a map key and its value, found ${describe(peek())}`);
    at++;
    expr();
  }
  function fieldInit(): void {
    name('a field name');
    if (!is(':')) fail(peek(), `expected ':' after the field name, found ${describe(peek())}`);
    at++;
    expr();
  }
  function member(): void {
    const first = peek();
    primary();
    // `pkg.Type{field: value}` (a message literal) is a name path followed by '{'.
    let namePath = (first.kind === 'ident' && !LITERAL_WORDS.has(first.text) && toks[at - 1] === first) || (first.text === '.' && toks[at - 2] === first);
    for (;;) {
      if (is('.')) {
        at++;
        name('a field or method name after \'.\'');
        if (is('(')) { items(toks[at++]!, expr, false); namePath = false; }
      } else if (is('[')) {
        const open = toks[at++]!;
        enter(open);
        expr();
        close(open);
        depth--;
        namePath = false;
      } else if (is('{') && namePath) {
        items(toks[at++]!, fieldInit, true);
        namePath = false;
      } else return;
    }
  }
  /** `!!x` and `--x`, but not `-!x`: the grammar does not mix the two. */
  function unary(): void {
    const op = peek();
    if (!is('!') && !is('-')) return member();
    let n = 0;
    while (is(op.text)) {
      enter(peek());
      at++;
      n++;
    }
    const negativeNumber = is('-') && toks[at + 1]!.kind === 'number';
    if ((is('!') || is('-')) && !negativeNumber) fail(peek(), `'${peek().text}' cannot follow '${op.text}' here: use parentheses, like ${op.text}(${peek().text}x)`);
    if (negativeNumber) at++;
    if ((op.text === '-' || negativeNumber) && peek().kind === 'number' && /[uU]$/.test(peek().text)) fail(peek(), 'an unsigned number cannot be negative');
    member();
    depth -= n;
  }
  function binary(level: number): void {
    const operand = () => (level + 1 < LEVELS.length ? binary(level + 1) : unary());
    operand();
    while (LEVELS[level]!(peek())) {
      at++;
      operand();
    }
  }
  function expr(): void {
    binary(0);
    if (is('?')) {
      const q = toks[at++]!;
      enter(q);
      binary(0);
      if (!is(':')) fail(peek(), `expected ':' for the '?' at position ${q.pos}, found ${describe(peek())}`);
      at++;
      expr();
      depth--;
    }
  }

  expr();
  const rest = peek();
  if (rest.kind !== 'end') {
    if (rest.kind === 'punct' && [')', ']', '}'].includes(rest.text)) fail(rest, `'${rest.text}' closes nothing`);
    fail(rest, `unexpected ${describe(rest)} after a complete expression`);
  }
  let out = src;
  for (const [from, to] of comments) out = out.slice(0, from) + ' '.repeat(to - from) + out.slice(to);
  // It also rejects `f( )`: close empty argument lists at once, `f()  `, which moves no other token.
  toks.forEach((t, i) => {
    const next = toks[i + 1]!;
    if (t.text === '(' && next.text === ')' && next.pos > t.pos + 1) out = `${out.slice(0, t.pos + 1)})${out.slice(t.pos + 1, next.pos)}${out.slice(next.pos + 1)}`;
  });
  return out;
}
