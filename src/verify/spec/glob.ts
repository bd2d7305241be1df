/**
 * Redis-style globs for `redis.key`, `redis.command` and the `cache` assertion's key: the pattern
 * language of Redis's own KEYS and SCAN MATCH (redis.io/commands/keys; stringmatchlen in Redis's
 * util.c), so a pattern copied from redis-cli means the same here. `*` any run of characters (`:`
 * included: `order:*` matches `order:42:1701`), `?` one character, `[abc]`, `[a-z]` and `[^a]` one
 * character of a set, `\` makes the next character literal. Stricter than Redis on two malformed
 * patterns, which are spec mistakes rather than patterns: a `[` without its `]` and a trailing `\`
 * are errors (Redis reads them as a class running to the end and a literal backslash).
 */

/** Compiles a glob to an anchored RegExp; throws a plain Error naming what is wrong with it. */
export function redisGlob(glob: string, opts: { ignoreCase?: boolean } = {}): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      // Runs of `*` match what one does.
      while (glob[i + 1] === '*') i++;
      re += '.*';
    } else if (c === '?') re += '.';
    else if (c === '\\') {
      if (i + 1 >= glob.length) throw new Error(`glob "${glob}" ends with a lone "\\" (write "\\\\" for a backslash)`);
      re += escape(glob[++i]!);
    } else if (c === '[') {
      const close = classEnd(glob, i);
      if (close < 0) throw new Error(`glob "${glob}" has a "[" at character ${i + 1} without its "]" (write "\\[" for a bracket)`);
      re += charClass(glob.slice(i + 1, close));
      i = close;
    } else re += escape(c);
  }
  return new RegExp(`^${re}$`, opts.ignoreCase ? 'is' : 's');
}

/** The index of the `]` that closes the class opened at `open`: the first one not escaped, as in Redis (`[]` is empty). */
function classEnd(glob: string, open: number): number {
  for (let j = open + 1; j < glob.length; j++) {
    if (glob[j] === '\\') j++;
    else if (glob[j] === ']') return j;
  }
  return -1;
}

/** `abc`, `a-z`, `^a` (the text between the brackets) as a RegExp class, every member literal. */
function charClass(body: string): string {
  let out = '';
  let i = 0;
  const negate = body[0] === '^';
  if (negate) i++;
  for (; i < body.length; i++) {
    let c = body[i]!;
    if (c === '\\' && i + 1 < body.length) c = body[++i]!;
    if (body[i + 1] === '-' && i + 2 < body.length) {
      let hi = body[i + 2]!;
      i += 2;
      if (hi === '\\' && i + 1 < body.length) hi = body[++i]!;
      // Redis accepts a range written backwards ([z-a]) as the same range.
      const [a, b] = c <= hi ? [c, hi] : [hi, c];
      out += `${classChar(a)}-${classChar(b)}`;
    } else out += classChar(c);
  }
  // `[]` matches nothing, as in Redis; `[^]` any one character.
  if (out === '') return negate ? '[\\s\\S]' : '[^\\s\\S]';
  return `[${negate ? '^' : ''}${out}]`;
}

function classChar(c: string): string {
  return /[\\\]^-]/.test(c) ? `\\${c}` : c;
}

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}
