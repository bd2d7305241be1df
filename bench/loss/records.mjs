// Records for the loss harness: decode a packet list with tapwire's pipeline (in memory, original
// frame numbers kept), the identity of a record (what must come out the same when none of its bytes
// were lost), and the ids a request and its response carry (pcaps/loss: every response names its
// request, see scripts/record/loss.mjs).
import { Pipeline, loadProtos } from '../../dist/pipeline/index.js';
import { endpoint, connKey } from './capture.mjs';

/** Decode ENTRIES (readPackets entries, any order) into records. protos: loadProtos() result or undefined. */
export function decodePackets(entries, protos) {
  const records = [];
  const p = new Pipeline({ onRecord: (r) => records.push(r), frames: true, protos });
  for (const e of entries) p.packet(e.packet);
  p.finish();
  return records;
}

/** The .proto schemas (paths: files or directories) for gRPC messages' json. */
export function loadEchoProtos(paths) {
  return loadProtos(paths);
}

/** The connection key of a record (its client and server endpoints, sorted). */
export const recordKey = (r) => connKey(endpoint(r.src), endpoint(r.dst));

// Fields left out of identity: times (a reordered packet gets a new timestamp; they are capture
// facts, not decoding results) and the record id (its exchange counter shifts when an earlier
// exchange of the connection vanished).
const TIME_KEYS = new Set(['start', 'end', 'time', 'durationMs', 'connectMs']);

function strip(v, top) {
  if (Array.isArray(v)) return v.map((x) => strip(x, false));
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v).sort()) {
      if (TIME_KEYS.has(k) || (top && k === 'id')) continue;
      out[k] = strip(v[k], false);
    }
    return out;
  }
  return v;
}

/** A record's identity as a string: everything but times and the record id, keys sorted. */
export const identity = (r) => JSON.stringify(strip(r, true));

/** The fields of two identities that differ (top level and one level down), for explanations. */
export function differences(a, b) {
  const out = [];
  const A = strip(a, true);
  const B = strip(b, true);
  for (const k of new Set([...Object.keys(A), ...Object.keys(B)])) {
    const x = A[k];
    const y = B[k];
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    if (x && y && typeof x === 'object' && typeof y === 'object' && !Array.isArray(x)) {
      for (const k2 of new Set([...Object.keys(x), ...Object.keys(y)])) {
        if (JSON.stringify(x[k2]) !== JSON.stringify(y[k2])) out.push(`${k}.${k2}`);
      }
    } else out.push(k);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ids

const ID_BODY = /^id=(\d+);/;
const header = (half, name) => half?.headers?.[name];

function bodyText(half) {
  if (!half?.body) return undefined;
  return half.bodyEncoding === 'base64' ? Buffer.from(half.body, 'base64').toString('latin1') : half.body;
}

function messageIds(half) {
  return (half?.messages ?? []).map((m) => m.json?.id).filter((x) => x !== undefined).map(String);
}

/**
 * The ids a record's request and response carry: { request: string[], response: string[] }
 * (deduplicated). Only for the loss captures' echo services (HTTP path /echo, gRPC
 * /tapwire.loss.Echo/, the PostgreSQL SELECT ... AS id queries); other records carry none.
 */
export function recordIds(r) {
  const req = [];
  const res = [];
  if (r.protocol === 'postgres') {
    const q = r.request;
    if (q?.params?.length && /^SELECT \$1::int AS id/.test(q.query ?? '')) req.push(String(q.params[0]));
    const m = /^SELECT (\d+) AS id/.exec(q?.query ?? '');
    if (m && !q?.params?.length) req.push(m[1]);
    const row = r.response?.preview?.[0];
    if (row && r.response?.columns?.[0] === 'id' && row[0] != null) res.push(String(row[0]));
  } else if (r.request && !/^\/echo\b|^\/tapwire\.loss\.Echo\//.test(r.request.path ?? '')) {
    // not the loss captures' echo service: nothing names its request
  } else {
    // pcaps/loss: the request may be missing (then its response's ids stand alone)
    const q = r.request;
    const m = /[?&]id=(\d+)/.exec(q?.path ?? '');
    if (m) req.push(m[1]);
    if (header(q, 'x-request-id')) req.push(header(q, 'x-request-id'));
    const qb = ID_BODY.exec(bodyText(q) ?? '');
    if (qb) req.push(qb[1]);
    req.push(...messageIds(q));
    const s = r.response;
    if (header(s, 'x-request-id')) res.push(header(s, 'x-request-id'));
    const sb = ID_BODY.exec(bodyText(s) ?? '');
    if (sb) res.push(sb[1]);
    res.push(...messageIds(s));
  }
  return { request: [...new Set(req)], response: [...new Set(res)] };
}

/**
 * Whether a record pairs the wrong request and response: the ids its halves carry disagree
 * (within a half too: a request whose path and header name different ids was stitched together).
 * Returns a short reason, or undefined when consistent or when there is nothing to compare.
 */
export function mismatch(r) {
  const { request, response } = recordIds(r);
  if (request.length > 1) return `request carries ids ${request.join(', ')}`;
  if (response.length > 1) return `response carries ids ${response.join(', ')}`;
  if (request.length === 1 && response.length === 1 && request[0] !== response[0]) return `request id ${request[0]}, response id ${response[0]}`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// matching a mutated run's records to the clean run's

const overlaps = (a, b) => a && b && a[0] <= b[1] && b[0] <= a[1];

/** Index records of one run for take() and match(). */
export function indexRecords(records) {
  const byIdentity = new Map();
  const byKey = new Map();
  const byStream = new Map();
  for (const r of records) {
    const id = identity(r);
    if (!byIdentity.has(id)) byIdentity.set(id, []);
    byIdentity.get(id).push(r);
    const k = recordKey(r);
    if (!byKey.has(k)) byKey.set(k, []);
    byKey.get(k).push(r);
    if (r.streamId !== undefined) byStream.set(`${k}#${r.streamId}`, r);
  }
  return { byIdentity, byKey, byStream, used: new Set() };
}

/**
 * The record of the mutated run identical to clean record C (everything but times and the record
 * id, which includes its connection and frames), taken so it is not matched twice; undefined when
 * there is none. Pipelined requests share their first frame, so frames alone do not match records.
 */
export function take(index, c) {
  const list = index.byIdentity.get(identity(c));
  while (list?.length) {
    const r = list.shift();
    if (!index.used.has(r)) { index.used.add(r); return r; }
  }
  return undefined;
}

/**
 * For a clean record C with no identical record: the mutated run's record that stands for it, to
 * explain the difference. The same HTTP/2 stream; else the first record not yet taken whose
 * request or response frames overlap C's on the same connection (preferring one whose request
 * starts at the same frame). Undefined when none.
 */
export function match(index, c) {
  const k = recordKey(c);
  let r;
  if (c.streamId !== undefined) r = index.byStream.get(`${k}#${c.streamId}`);
  else {
    const free = (index.byKey.get(k) ?? []).filter((x) => !index.used.has(x));
    r = free.find((x) => c.request?.frames && x.request?.frames?.[0] === c.request.frames[0] && x.response?.frames?.[0] === c.response?.frames?.[0])
      ?? free.find((x) => overlaps(x.request?.frames, c.request?.frames) || overlaps(x.response?.frames, c.response?.frames));
  }
  if (r) index.used.add(r);
  return r;
}
