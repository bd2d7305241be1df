// tshark summaries of the PostgreSQL captures, used by scripts/record/postgres.mjs to check that each
// recorded case shows what it was recorded for. tshark 4.0 decodes only tcp port 5432 as pgsql by
// itself; the fixtures use their own ports, so every call passes -d tcp.port==PORT,pgsql.
import { execFileSync } from 'node:child_process';
import { packetCount } from '../lib.mjs';

/**
 * tshark -T fields over one capture, every occurrence of a field joined by '|', one row per displayed
 * packet, each row an array (per field) of arrays (per occurrence). decodeAs: e.g. 'pgsql', 'mysql'.
 */
export function tsharkFields(file, port, filter, fields, decodeAs = 'pgsql') {
  const args = ['-r', file, '-d', `tcp.port==${port},${decodeAs}`, '-Y', filter, '-T', 'fields',
    '-E', 'occurrence=a', '-E', 'aggregator=|'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t').map((v) => (v === '' ? [] : v.split('|'))));
}

/** Every occurrence of one field in the packets matching filter, in order. */
export function values(file, port, filter, field, decodeAs = 'pgsql') {
  return tsharkFields(file, port, filter, [field], decodeAs).flatMap(([v]) => v);
}

/**
 * Every pgsql message tshark decodes, one object each, in capture order:
 * { frame, stream, fe (frontend, i.e. client to server), type ('Parse', 'Data row', ...), tree }, where tree
 * is tshark's JSON for that one message (-T json --no-duplicate-keys: repeated keys become arrays).
 * Field-per-packet output (-T fields) cannot tell which message of a segment a value belongs to; this can.
 */
export function messages(file, port, filter = 'pgsql') {
  const out = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},pgsql`, '-Y', filter, '-T', 'json',
    '--no-duplicate-keys', '-J', 'frame tcp pgsql'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  const list = [];
  for (const p of JSON.parse(out)) {
    const l = p._source.layers;
    for (const tree of [].concat(l.pgsql ?? [])) {
      list.push({ frame: Number(l.frame['frame.number']), stream: Number(l.tcp['tcp.stream']), fe: tree['pgsql.frontend'] === '1',
        type: tree['pgsql.type'], tree });
    }
  }
  return list;
}

/** All values of field `key` anywhere in a message's tree (its subtrees included), in order. */
export function all(m, key) {
  const found = [];
  const walk = (o) => {
    if (Array.isArray(o)) { o.forEach(walk); return; }
    if (o === null || typeof o !== 'object') return;
    for (const [k, v] of Object.entries(o)) {
      if (k === key) found.push(...[].concat(v).filter((x) => typeof x !== 'object'));
      else walk(v);
    }
  };
  walk(m.tree);
  return found;
}
/** The first value of field `key` in a message, or undefined. */
export const get = (m, key) => all(m, key)[0];

/**
 * Packets and pgsql messages of a capture: { packets, pgsqlPackets, messages, counts: { 'F Parse': n,
 * 'B Data row': n, ... } } where F = frontend (client), B = backend (server); counts in first-seen order.
 */
export function summarize(file, port) {
  const msgs = messages(file, port);
  const counts = {};
  for (const m of msgs) {
    const k = `${m.fe ? 'F' : 'B'} ${m.type}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return { packets: packetCount(file), pgsqlPackets: new Set(msgs.map((m) => m.frame)).size, messages: msgs, counts };
}

export const count = (s, key) => s.counts[key] ?? 0;

/** "F Parse 1, F Bind 8, ..." in first-seen order. */
export function formatCounts(counts) {
  return Object.entries(counts).map(([k, n]) => `${k} ${n}`).join(', ');
}

export function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}
