import type { PgNotice } from './types.js';

/** Text helpers of the PostgreSQL session: notices, bounded name maps, COPY lines, statement splitting. */

/** Statements and portals remembered per connection (bounded: a client may prepare without end). */
const MAX_NAMED = 10_000;

export function notice(f: Record<string, string>): PgNotice {
  const n: PgNotice = { severity: f.V ?? f.S ?? '', code: f.C ?? '', message: f.M ?? '' };
  if (f.D) n.detail = f.D;
  if (f.H) n.hint = f.H;
  if (f.P && /^\d+$/.test(f.P)) n.position = Number(f.P);
  return n;
}

export function remember<V>(m: Map<string, V>, k: string, v: V): void {
  // Replacing a known name (the unnamed statement/portal, every Bind) keeps its place: cheap.
  if (m.has(k)) {
    m.set(k, v);
    return;
  }
  m.set(k, v);
  if (m.size > MAX_NAMED) m.delete(m.keys().next().value as string);
}

/** Lines of text-format COPY data, not counting the "\." end-of-data marker. */
export function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(0x0a); i >= 0; i = b.indexOf(0x0a, i + 1)) n++;
  const l = b.length;
  if (l >= 3 && b[l - 3] === 0x5c && b[l - 2] === 0x2e && b[l - 1] === 0x0a && (l === 3 || b[l - 4] === 0x0a)) n--;
  return n;
}

/**
 * The statements of a simple Query string, split at semicolons outside quotes, comments and
 * dollar-quoted bodies; each gets its own CommandComplete from the server.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const q = c;
      i++;
      while (i < n && !(sql[i] === q && sql[i + 1] !== q)) i += sql[i] === q ? 2 : 1;
      i++;
    } else if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && sql[i + 1] === '*') {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m) {
        const e = sql.indexOf(m[0], i + m[0].length);
        i = e < 0 ? n : e + m[0].length;
      } else i++;
    } else if (c === ';') {
      const s = sql.slice(start, i).trim();
      if (s) out.push(s);
      start = i + 1;
      i++;
    } else i++;
  }
  const last = sql.slice(start).trim();
  if (last) out.push(last);
  return out;
}
