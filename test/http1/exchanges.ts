/**
 * Random HTTP/1 exchanges for property tests: arbitraries, their wire bytes, the records they
 * must decode to, and how they are cut into (reordered) TCP segments.
 */
import fc from 'fast-check';
import { Conversation, type Segment } from '../helpers/bytes.js';
import { isHttpLike, type FlowRecord, type HttpFlowRecord } from '../../src/flows/record.js';

export interface Exchange {
  method: string;
  path: string;
  reqHeaders: [string, string][];
  reqBody: string;
  reqChunked: boolean;
  status: number;
  respHeaders: [string, string][];
  respBody: string;
  respChunked: boolean;
  chunkSizes: number[];
}

const REASONS: Record<number, string> = { 200: 'OK', 201: 'Created', 202: 'Accepted', 400: 'Bad Request', 404: 'Not Found', 500: 'Internal Server Error' };
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).map((s) => `x-${s}`);
const headerValue = fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/);
const headers = fc.uniqueArray(fc.tuple(headerName, headerValue), { maxLength: 4, selector: ([n]) => n });
const text = (max: number) => fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;-'), maxLength: max });

const exchange = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
  token: fc.stringMatching(/^[a-z0-9]{1,12}$/),
  query: fc.option(fc.stringMatching(/^[a-z]=[a-z0-9]{0,6}$/), { nil: undefined }),
  reqHeaders: headers,
  reqBody: text(300),
  reqChunked: fc.boolean(),
  status: fc.constantFrom(200, 201, 202, 400, 404, 500),
  respHeaders: headers,
  respBody: fc.oneof(text(0), text(40), text(2000)),
  respChunked: fc.boolean(),
  chunkSizes: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 6 }),
});

export function exchanges(min: number, max: number) {
  return fc.array(exchange, { minLength: min, maxLength: max }).map((xs) => xs.map((x, i): Exchange => ({
    ...x,
    path: `/e${i}/${x.token}${x.query ? `?${x.query}` : ''}`,
    reqBody: BODY_METHODS.has(x.method) ? x.reqBody : '',
    reqChunked: BODY_METHODS.has(x.method) && x.reqChunked,
  })));
}

function chunked(body: string, sizes: number[]): string {
  let out = '';
  for (let i = 0, k = 0; i < body.length; k++) {
    const n = Math.min(sizes[k % sizes.length]!, body.length - i);
    out += `${n.toString(16)}\r\n${body.slice(i, i + n)}\r\n`;
    i += n;
  }
  return `${out}0\r\n\r\n`;
}

function framing(body: string, isChunked: boolean, sizes: number[], always: boolean): { headers: [string, string][]; wire: string } {
  if (isChunked) return { headers: [['Transfer-Encoding', 'chunked']], wire: chunked(body, sizes) };
  if (body.length === 0 && !always) return { headers: [], wire: '' };
  return { headers: [['Content-Length', String(body.length)]], wire: body };
}

export function requestBytes(x: Exchange): string {
  const f = framing(x.reqBody, x.reqChunked, x.chunkSizes, BODY_METHODS.has(x.method));
  const hs: [string, string][] = [['Host', 'example.test'], ...x.reqHeaders, ...f.headers];
  return `${x.method} ${x.path} HTTP/1.1\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${f.wire}`;
}

export function responseBytes(x: Exchange): string {
  const f = framing(x.respBody, x.respChunked, x.chunkSizes, true);
  const hs: [string, string][] = [...x.respHeaders, ['X-Echo-Path', x.path], ...f.headers];
  return `HTTP/1.1 ${x.status} ${REASONS[x.status]}\r\n${hs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${f.wire}`;
}

export function expected(x: Exchange) {
  const lower = (hs: [string, string][]) => Object.fromEntries(hs.map(([k, v]) => [k.toLowerCase(), v]));
  const reqF = framing(x.reqBody, x.reqChunked, x.chunkSizes, BODY_METHODS.has(x.method));
  const respF = framing(x.respBody, x.respChunked, x.chunkSizes, true);
  return {
    request: {
      method: x.method, path: x.path, version: '1.1',
      headers: lower([['Host', 'example.test'], ...x.reqHeaders, ...reqF.headers]),
      bodySize: x.reqBody.length, body: x.reqBody || undefined,
    },
    response: {
      status: x.status, reason: REASONS[x.status], version: '1.1',
      headers: lower([...x.respHeaders, ['X-Echo-Path', x.path], ...respF.headers]),
      bodySize: x.respBody.length, body: x.respBody || undefined,
    },
    incomplete: undefined,
  };
}

export function actual(r: HttpFlowRecord) {
  const q = r.request, s = r.response;
  return {
    request: q && { method: q.method, path: q.path, version: q.version, headers: q.headers, bodySize: q.bodySize, body: q.body },
    response: s && { status: s.status, reason: s.reason, version: s.version, headers: s.headers, bodySize: s.bodySize, body: s.body },
    incomplete: r.incompleteReason,
  };
}

/** How the wire bytes are cut and reordered: segment sizes (cycled) and sort jitter per segment. */
export const wire = fc.record({
  pipelined: fc.boolean(),
  sizes: fc.array(fc.integer({ min: 1, max: 600 }), { minLength: 1, maxLength: 12 }),
  window: fc.integer({ min: 1, max: 4 }),
  jitter: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 16 }),
});
export type Wire = typeof wire extends fc.Arbitrary<infer T> ? T : never;

/**
 * The segments of one connection carrying `xs`: each burst (one direction's bytes between two
 * turns of the other side) is cut at the given sizes and its segments are shuffled by up to
 * `window` places; capture times are then given in the new order, so the capture itself is out
 * of order (not something the time-order stage could undo).
 */
export function build(xs: Exchange[], w: Wire): Segment[] {
  const c = new Conversation();
  c.handshake();
  const bursts: [0 | 1, string][] = w.pipelined
    ? [[0, xs.map(requestBytes).join('')], [1, xs.map(responseBytes).join('')]]
    : xs.flatMap((x) => [[0, requestBytes(x)], [1, responseBytes(x)]] as [0 | 1, string][]);
  const out: Segment[] = [...c.segments];
  let k = 0;
  for (const [dir, bytes] of bursts) {
    const cuts: number[] = [];
    for (let at = 0; ;) {
      at += w.sizes[k++ % w.sizes.length]!;
      if (at >= bytes.length) break;
      cuts.push(at);
    }
    const before = c.segments.length;
    c.send(dir, bytes, cuts);
    const segs = c.segments.slice(before);
    const keyed = segs.map((s, i) => ({ s, key: i + (w.jitter[(k + i) % w.jitter.length]! % (w.window + 1)) }));
    keyed.sort((a, b) => a.key - b.key);
    out.push(...keyed.map((e) => e.s));
  }
  const closing = c.segments.length;
  c.close();
  out.push(...c.segments.slice(closing));
  const t0 = out[0]!.time;
  return out.map((s, i) => ({ ...s, time: t0 + i * 0.001 }));
}

/** Overwrites payload bytes in place (lengths, hence sequence numbers, stay right). */
export function mutate(segs: Segment[], muts: { dir: 0 | 1; pos: number; byte: number }[]): void {
  for (const m of muts) {
    const data = segs.filter((s) => s.dir === m.dir && s.payload.length > 0);
    const total = data.reduce((n, s) => n + s.payload.length, 0);
    let at = m.pos % total;
    for (const s of data) {
      if (at < s.payload.length) {
        s.payload = Buffer.from(s.payload);
        s.payload[at] = m.byte;
        break;
      }
      at -= s.payload.length;
    }
  }
}

export const mutation = fc.record({ dir: fc.constantFrom(0 as const, 1 as const), pos: fc.nat(), byte: fc.nat({ max: 255 }) });

/**
 * Records whose two halves carry identifying bytes that survived, but do not belong together.
 * Only HTTP records have such halves (mutated bytes may make anything of a connection).
 */
export function wrongPairs(records: readonly FlowRecord[], xs: Exchange[]): string[] {
  const paths = new Set(xs.map((x) => x.path));
  const out: string[] = [];
  for (const r of records.filter(isHttpLike)) {
    const echo = r.response?.headers['x-echo-path'];
    if (!r.request || echo === undefined) continue;
    if (paths.has(echo) && paths.has(r.request.path) && echo !== r.request.path) {
      out.push(`${r.request.method} ${r.request.path} paired with the response for ${echo}`);
    }
  }
  return out;
}

/**
 * Drops data segments from the capture (not from the wire: the peers' ACKs still cover them).
 * `picks` choose among the data segments (modulo their count). Returns what the capture keeps and
 * the exchanges whose bytes were in a dropped segment (either direction).
 */
export function loseSegments(segs: Segment[], xs: Exchange[], picks: number[]): { kept: Segment[]; damaged: Set<number>; dropped: Segment[] } {
  const data = segs.filter((s) => s.payload.length > 0);
  const dropped = new Set(picks.map((p) => data[p % data.length]!));
  // Each exchange's byte range in each direction's stream (requests, then responses, in order).
  const edges = (bytes: string[]) => bytes.reduce<number[]>((a, b) => [...a, a[a.length - 1]! + Buffer.byteLength(b, 'latin1')], [0]);
  const ranges = [edges(xs.map(requestBytes)), edges(xs.map(responseBytes))];
  const base = [0, 1].map((d) => segs.find((s) => s.dir === d && s.payload.length === 0)!.seq + 1);
  const damaged = new Set<number>();
  for (const s of dropped) {
    const from = (s.seq - base[s.dir]!) >>> 0;
    const to = from + s.payload.length;
    const r = ranges[s.dir]!;
    for (let i = 0; i < xs.length; i++) if (r[i]! < to && from < r[i + 1]!) damaged.add(i);
  }
  return { kept: segs.filter((s) => !dropped.has(s)), damaged, dropped: [...dropped] };
}
