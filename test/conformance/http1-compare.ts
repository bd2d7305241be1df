/**
 * HTTP/1 transactions as tshark sees them (oracle rows) and as tapwire emits them (flow records),
 * and the matching between the two. Pure functions: http1.test.ts runs them per capture.
 *
 * A transaction is (connection, method, path, status):
 *   - tshark: every http_req row, with the status of the http_resp row its `response_in` names;
 *     every final http_resp row no request names is a response-only transaction. Interim 1xx
 *     responses (not 101) are not transactions: tapwire folds them into `response.interim`, so
 *     they are counted per connection and compared as such.
 *   - tapwire: every record with protocol "http".
 * The connection is the unordered endpoint pair, so client/server orientation never matters and
 * a reused 4-tuple simply holds more transactions.
 */
import type { FlowRecord, HttpFlow, RecordRequest, RecordResponse } from '../../src/flows/record.js';
import type { HttpRespRow, Oracle, OracleEndpoint } from './oracle.js';

export interface Tx {
  conn: string;
  method?: string;
  path?: string;
  status?: number;
  /** Frame that completed the request / response (tshark: row frame; tapwire: last frame). */
  reqFrame?: number;
  respFrame?: number;
  /** Body lengths after transfer and content decoding, when known (see bodyLengths()). */
  reqBody?: number;
  respBody?: number;
  /** tapwire only: why the record is incomplete. */
  incomplete?: string;
}

export interface InterimCount {
  conn: string;
  n: number;
}

/** Full, lower-case IPv6 (8 groups of 4 hex digits) or IPv4 as is: one spelling per address. */
export function normIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  const [head, tail] = ip.toLowerCase().split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.padStart(4, '0')).join(':');
}

export function connKey(a: OracleEndpoint, b: OracleEndpoint): string {
  const x = `${normIp(a.ip)}/${a.port}`, y = `${normIp(b.ip)}/${b.port}`;
  return x < y ? `${x} ${y}` : `${y} ${x}`;
}

/** 1xx other than 101 Switching Protocols: an interim response (RFC 9110 §15.2). */
export function isInterim(code: number | undefined): boolean {
  return code !== undefined && code >= 100 && code < 200 && code !== 101;
}

/** tshark's transactions, paired through response_in / request_in. */
export function oracleTransactions(o: Oracle): { txs: Tx[]; interim: Map<string, number> } {
  const connOf = new Map<number, string>();
  for (const s of o.tcpStreams) connOf.set(s.stream, connKey(s.node0, s.node1));
  const conn = (stream: number): string => {
    const c = connOf.get(stream);
    if (c === undefined) throw new Error(`${o.file}: HTTP row on tcp.stream ${stream}, which has no tcp_stream row`);
    return c;
  };
  const used = new Set<HttpRespRow>();
  const txs: Tx[] = [];
  for (const q of o.httpReqs) {
    let r: HttpRespRow | undefined;
    if (q.responseIn !== undefined) {
      const cands = o.httpResps.filter((x) => !used.has(x) && x.stream === q.stream && x.frame === q.responseIn);
      // Several responses completed in one frame: the one that names this request.
      r = cands.find((x) => x.requestIn === q.frame) ?? cands[0];
      if (r) used.add(r);
    }
    txs.push({
      conn: conn(q.stream), method: q.method, path: q.uri, status: r?.code,
      reqFrame: q.frame, respFrame: r?.frame, reqBody: q.bodyLen, respBody: r?.bodyLen,
    });
  }
  const interim = new Map<string, number>();
  for (const r of o.httpResps) {
    if (used.has(r)) continue;
    const c = conn(r.stream);
    if (isInterim(r.code)) {
      interim.set(c, (interim.get(c) ?? 0) + 1);
      continue;
    }
    txs.push({ conn: c, status: r.code, respFrame: r.frame, respBody: r.bodyLen });
  }
  return { txs, interim };
}

/**
 * A record half's body length after content decoding, when the record can tell it exactly:
 * no Content-Encoding → bodySize (already de-chunked); with one → the decoded preview's length,
 * provided the preview was neither cut nor failed. Undefined otherwise.
 */
export function decodedBodyLength(h: RecordRequest | RecordResponse | undefined): number | undefined {
  if (!h) return undefined;
  const ce = (h.headers['content-encoding'] ?? '').toLowerCase().split(',').map((s) => s.trim()).filter((s) => s && s !== 'identity');
  if (ce.length === 0) return h.bodySize;
  if (h.bodyTruncated || h.bodyDecodeError) return undefined;
  if (h.body === undefined) return 0;
  return h.bodyEncoding === 'base64' ? Buffer.from(h.body, 'base64').length : Buffer.byteLength(h.body, 'utf8');
}

export function tapwireTransactions(records: readonly FlowRecord[]): { txs: Tx[]; interim: Map<string, number>; records: HttpFlow[] } {
  const txs: Tx[] = [];
  const recs: HttpFlow[] = [];
  const interim = new Map<string, number>();
  for (const r of records) {
    if (r.protocol !== 'http') continue;
    const c = connKey(r.src, r.dst);
    const q = r.request, s = r.response;
    txs.push({
      conn: c, method: q?.method, path: q?.path, status: s?.status,
      reqFrame: q?.frames?.[1], respFrame: s?.frames?.[1],
      reqBody: q && !q.bodyTruncated ? decodedBodyLength(q) : undefined,
      respBody: s && !s.bodyTruncated ? decodedBodyLength(s) : undefined,
      incomplete: r.incomplete ? (r.incompleteReason ?? 'incomplete') : undefined,
    });
    recs.push(r);
    if (s?.interim?.length) interim.set(c, (interim.get(c) ?? 0) + s.interim.length);
  }
  return { txs, interim, records: recs };
}

export function txLabel(t: Pick<Tx, 'method' | 'path' | 'status'>): string {
  return `${t.method ?? '-'} ${t.path ?? '-'} ${t.status ?? '-'}`;
}

function key(t: Tx): string {
  return `${t.conn}\u0000${txLabel(t)}`;
}

export interface Matching {
  /** Same (connection, method, path, status). */
  pairs: { oracle: Tx; tapwire: Tx }[];
  /**
   * tshark has a request with no response; tapwire has the same request with the start of a
   * response it marks incomplete (cut by the capture end, a reset ...). tshark shows a response
   * only once its PDU is whole, so it drops such a response: tapwire agrees with everything
   * tshark saw and adds the status. Counted as matched, listed as a deviation to explain.
   */
  partial: { oracle: Tx; tapwire: Tx }[];
  /** In tshark, not in tapwire. */
  missing: Tx[];
  /** In tapwire, not in tshark. */
  extra: Tx[];
}

function take(b: Tx[], o: Tx): Tx {
  let i = b.findIndex((t) => t.reqFrame === o.reqFrame && t.respFrame === o.respFrame);
  if (i < 0) i = b.findIndex((t) => (o.reqFrame !== undefined && t.reqFrame === o.reqFrame) || (o.reqFrame === undefined && t.respFrame === o.respFrame));
  if (i < 0) i = 0;
  return b.splice(i, 1)[0]!;
}

/**
 * Multiset match on (connection, method, path, status). Within one key, pairs are chosen by the
 * frame that completed the request (then the response), so repeated identical requests on one
 * connection pair with the right copy. A second pass makes the `partial` matches.
 */
export function matchTransactions(oracle: readonly Tx[], tapwire: readonly Tx[]): Matching {
  const buckets = new Map<string, Tx[]>();
  for (const t of tapwire) {
    const k = key(t);
    let b = buckets.get(k);
    if (!b) buckets.set(k, (b = []));
    b.push(t);
  }
  const pairs: Matching['pairs'] = [];
  const unmatched: Tx[] = [];
  for (const o of oracle) {
    const b = buckets.get(key(o));
    if (!b || b.length === 0) unmatched.push(o);
    else pairs.push({ oracle: o, tapwire: take(b, o) });
  }
  const rest = [...buckets.values()].flat();
  const partial: Matching['partial'] = [];
  const missing: Tx[] = [];
  for (const o of unmatched) {
    const cands = o.method !== undefined && o.status === undefined
      ? rest.filter((t) => t.conn === o.conn && t.method === o.method && t.path === o.path && t.status !== undefined && t.incomplete)
      : [];
    if (cands.length === 0) {
      missing.push(o);
      continue;
    }
    const t = take(cands, o);
    rest.splice(rest.indexOf(t), 1);
    partial.push({ oracle: o, tapwire: t });
  }
  return { pairs, partial, missing, extra: rest };
}
