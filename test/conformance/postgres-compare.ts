/**
 * PostgreSQL comparison between tshark's `pg` oracle rows and tapwire's postgres records, per TCP
 * connection. Items compared (each tshark item counts once towards the match rate):
 *
 *   query   the SQL of every frontend Simple query, in order (tapwire: request.query of its Query records)
 *   parse   the SQL of every Parse: it must be request.query of an Execute record of the connection
 *           with the same statement name (tapwire carries Parse's SQL on the Execute that runs it)
 *   command every CommandComplete tag, in order (tapwire: response.command)
 *   error   every ErrorResponse "SEVERITY CODE message", in order (tapwire: response.error)
 *   notice  every NoticeResponse "SEVERITY CODE message", in order (tapwire: response.notices)
 *   cancel  every CancelRequest "pid=N" (tapwire: a CancelRequest record with request.pid)
 *   auth    per connection with an Authentication request: the authentication tshark saw (last authtype
 *           other than 0/11/12, or 0 alone = trust) against postgres.auth of its records
 */
import type { FlowRecord, PostgresFlow } from '../../src/flows/record.js';
import { connKey } from './http1-compare.js';
import type { Oracle, PgRow } from './oracle.js';

export type PgItemKind = 'query' | 'parse' | 'command' | 'error' | 'notice' | 'cancel' | 'auth';

export interface PgDeviation {
  kind: PgItemKind;
  /** missing: tshark has it, tapwire not; extra: the reverse; differs: both, with different values (auth). */
  side: 'missing' | 'extra' | 'differs';
  /** The item as tshark (or for extra, tapwire) has it. */
  what: string;
  conn: string;
  detail: string;
}

export interface PgConnItems {
  conn: string;
  /** tcp.stream, when tshark has the connection. */
  stream?: number;
  query: string[];
  /** Parse: statement name and SQL. */
  parse: { statement: string; sql: string; frame: number }[];
  command: string[];
  error: string[];
  notice: string[];
  cancel: string[];
  /** Expected auth name (tapwire's spelling), when tshark saw an Authentication request. */
  auth?: string;
}

const empty = (conn: string, stream?: number): PgConnItems => ({
  conn, stream, query: [], parse: [], command: [], error: [], notice: [], cancel: [],
});

/** tshark's authtype code as tapwire names the mechanism (src/protocols/postgres/messages.ts). */
const AUTH_NAMES: Record<number, string> = { 0: 'trust', 2: 'kerberos', 3: 'cleartext', 5: 'md5', 7: 'gss', 9: 'sspi', 10: 'SASL' };

/** Parse's info: `statement=NAME query=SQL`. */
export function parseParseInfo(info: string): { statement: string; sql: string } {
  const m = /^statement=(.*?) query=([\s\S]*)$/.exec(info);
  if (!m) throw new Error(`pg Parse info "${info}" is not "statement=NAME query=SQL"`);
  return { statement: m[1]!, sql: m[2]! };
}

/** tshark's items per connection (keyed like http1-compare's connKey). */
export function oraclePg(oracle: Oracle): PgConnItems[] {
  const keyOf = new Map(oracle.tcpStreams.map((s) => [s.stream, connKey(s.node0, s.node1)]));
  const by = new Map<number, PgConnItems>();
  const auths = new Map<number, number[]>();
  for (const r of oracle.pgRows) {
    let c = by.get(r.stream);
    if (!c) by.set(r.stream, (c = empty(keyOf.get(r.stream) ?? `stream ${r.stream}`, r.stream)));
    addRow(c, r, auths);
  }
  for (const [stream, codes] of auths) {
    const c = by.get(stream)!;
    // Only the codes the server sent (a Startup without an answer gives no auth item).
    const real = codes.filter((x) => x !== 0 && x !== 11 && x !== 12);
    const code = real.length ? real[real.length - 1]! : 0;
    c.auth = AUTH_NAMES[code] ?? `authtype=${code}`;
  }
  return [...by.values()];
}

function addRow(c: PgConnItems, r: PgRow, auths: Map<number, number[]>): void {
  const kv = (k: string) => (r.info.startsWith(`${k}=`) ? r.info.slice(k.length + 1) : r.info);
  switch (`${r.dir} ${r.type}`) {
    case 'F Simple query': c.query.push(kv('query')); break;
    case 'F Parse': c.parse.push({ ...parseParseInfo(r.info), frame: r.frame }); break;
    case 'B Command completion': c.command.push(kv('tag')); break;
    case 'B Error': c.error.push(r.info); break;
    case 'B Notice': c.notice.push(r.info); break;
    case 'F Cancel request': c.cancel.push(r.info.replace(/ key=.*$/, '')); break;
    case 'B Authentication request': {
      const m = /^authtype=(\d+)$/.exec(r.info);
      if (m) (auths.get(r.stream) ?? auths.set(r.stream, []).get(r.stream)!).push(Number(m[1]));
      break;
    }
    default:
  }
}

/** tapwire's items per connection, from its postgres records in emission order. */
export function tapwirePg(records: readonly FlowRecord[]): { items: PgConnItems[]; records: Map<string, PostgresFlow[]> } {
  const by = new Map<string, PgConnItems>();
  const recs = new Map<string, PostgresFlow[]>();
  const seenQuery = new Set<string>();
  for (const r of records) {
    if (r.protocol !== 'postgres') continue;
    const conn = connKey(r.src, r.dst);
    let c = by.get(conn);
    if (!c) by.set(conn, (c = empty(conn)));
    (recs.get(conn) ?? recs.set(conn, []).get(conn)!).push(r);
    const q = r.request, s = r.response;
    // A multi-statement Query gives one record per statement: its SQL is one item, like tshark's.
    if (q?.message === 'Query' && q.query !== undefined) {
      const k = `${conn}@${q.frames?.[0]}`;
      if (!seenQuery.has(k)) { seenQuery.add(k); c.query.push(q.query); }
    }
    if (q?.message === 'Execute' && q.query !== undefined) c.parse.push({ statement: q.statement ?? '', sql: q.query, frame: q.frames?.[0] ?? 0 });
    if (q?.message === 'CancelRequest') c.cancel.push(`pid=${q.pid}`);
    for (const n of s?.notices ?? []) c.notice.push(`${n.severity} ${n.code} ${n.message}`);
    if (s?.command !== undefined) c.command.push(s.command);
    if (s?.error) c.error.push(`${s.error.severity} ${s.error.code} ${s.error.message}`);
    if (r.postgres?.auth !== undefined) c.auth ??= r.postgres.auth;
  }
  return { items: [...by.values()], records: recs };
}

/** Longest common subsequence alignment: which of `a` and `b` pair up, in order. */
export function align<T>(a: readonly T[], b: readonly T[]): { matched: number; missing: T[]; extra: T[] } {
  const n = a.length, m = b.length;
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i]![j] = a[i] === b[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const missing: T[] = [], extra: T[] = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { i++; j++; } else if (L[i + 1]![j]! >= L[i]![j + 1]!) missing.push(a[i++]!); else extra.push(b[j++]!);
  }
  missing.push(...a.slice(i));
  extra.push(...b.slice(j));
  return { matched: L[0]![0]!, missing, extra };
}

/** Does tapwire's mechanism name fit tshark's authtype (10 = SASL: any SCRAM mechanism list)? */
export function authAgrees(oracle: string, tapwire: string | undefined): boolean {
  if (tapwire === undefined) return false;
  if (oracle === 'SASL') return /^SCRAM-SHA-256/.test(tapwire);
  return oracle === tapwire;
}

/** Compares tshark's and tapwire's items: counts per kind and every deviation. */
export function comparePg(oracle: PgConnItems[], tapwire: PgConnItems[]): {
  items: number; matched: number; byKind: Record<PgItemKind, [number, number]>; deviations: PgDeviation[];
} {
  const t = new Map(tapwire.map((c) => [c.conn, c]));
  const byKind = { query: [0, 0], parse: [0, 0], command: [0, 0], error: [0, 0], notice: [0, 0], cancel: [0, 0], auth: [0, 0] } as Record<PgItemKind, [number, number]>;
  const deviations: PgDeviation[] = [];
  const conns = [...new Set([...oracle.map((c) => c.conn), ...tapwire.map((c) => c.conn)])];
  for (const conn of conns) {
    const o = oracle.find((c) => c.conn === conn) ?? empty(conn);
    const w = t.get(conn) ?? empty(conn);
    for (const kind of ['query', 'command', 'error', 'notice', 'cancel'] as const) {
      const a = align(o[kind], w[kind]);
      byKind[kind][0] += o[kind].length;
      byKind[kind][1] += a.matched;
      for (const x of a.missing) deviations.push({ kind, side: 'missing', what: x, conn, detail: `tshark has ${kind} "${x}", tapwire not (tapwire: ${JSON.stringify(w[kind])})` });
      for (const x of a.extra) deviations.push({ kind, side: 'extra', what: x, conn, detail: `tapwire has ${kind} "${x}", tshark not (tshark: ${JSON.stringify(o[kind])})` });
    }
    for (const p of o.parse) {
      byKind.parse[0]++;
      if (w.parse.some((e) => e.sql === p.sql && e.statement === p.statement)) byKind.parse[1]++;
      else deviations.push({ kind: 'parse', side: 'missing', what: p.sql, conn, detail: `Parse (frame ${p.frame}, statement "${p.statement}") "${p.sql}" is the query of no Execute record` });
    }
    if (o.auth !== undefined) {
      byKind.auth[0]++;
      if (authAgrees(o.auth, w.auth)) byKind.auth[1]++;
      else deviations.push({ kind: 'auth', side: w.auth === undefined ? 'missing' : 'differs', what: o.auth, conn, detail: `tshark's authentication ${o.auth}, tapwire's ${w.auth ?? '(no record on the connection)'}` });
    }
  }
  const items = Object.values(byKind).reduce((n, [x]) => n + x, 0);
  const matched = Object.values(byKind).reduce((n, [, y]) => n + y, 0);
  return { items, matched, byKind, deviations };
}
