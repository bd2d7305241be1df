import { endpoint } from '../common/index.js';
import { recordModule, sqlHalves, type FlowRecord } from '../flows/index.js';
import { cacheKeyStats, cacheOps, isRedis, keyPattern, type CacheKeyStats, type CacheOp } from './cache-hits.js';
import type { DetectorThresholds } from './config.js';
import type { DetectContext } from './context.js';
import { evidence, type Evidence, type Finding } from './types.js';

/**
 * `cache-aside`: judges a Redis cache used the cache-aside way (read the key; on a miss query the
 * database and write the key). Three causes, one kind:
 *
 * - `keys-never-read` (Redis traffic alone is enough): keys read once (a miss), written, and never read
 *   again, whose common pattern has a part that never repeats — a timestamp, or a part under which the
 *   same entity was written again with the same value (see namePattern). The seed's first story:
 *   `order:${id}:${Date.now()}` as the key, so no read ever finds what was written. Warning at
 *   `minKeys`, error at `errorKeys`.
 * - `db-after-set` (needs inbound requests): a database read made although the cache held the key: the
 *   request read key K (a hit, or a read of unseen reply while K was set and still fresh: not expired
 *   per SET EX/PX, EXPIRE; not deleted), then made a database read (isDatabaseRead), then wrote K or a
 *   key of its pattern. Writes, write-through and invalidation are never this. Warning at
 *   `minDbAfterSet`, error at `errorDbAfterSet`.
 * - `hit-ratio` (needs inbound requests): where the miss → database → SET sequence is seen, the key
 *   pattern's hit ratio and how many requests the cache answered with no database call. Info: a
 *   working cache-aside is reported for context and does not fail a verdict (verdict.ts fails on errors).
 *
 * A database call is any record whose module's halves are SQL (PostgreSQL, MySQL); a fill counts any,
 * `db-after-set` only reads.
 */
export function detectCacheAside(flows: readonly FlowRecord[], ctx: DetectContext, t: DetectorThresholds['cache-aside']): Finding[] {
  const ops = cacheOps(flows);
  if (ops.length === 0) return [];
  const out = neverRead(ops, ctx, t);
  const inbound = inboundUse(flows, ops, ctx);
  out.push(...dbAfterSet(inbound.dbAfterSet, ctx, t));
  // A pattern with a warning or an error carries its hit ratio there, not in an info finding of its own.
  const flagged = new Set(out.flatMap((f) => (f.details.keyPatterns as string[] | undefined) ?? []));
  const stats = new Map(cacheKeyStats(inbound.calls).map((s) => [s.pattern, s]));
  for (const f of out) {
    const s = stats.get((f.details.keyPatterns as string[] | undefined)?.[0] ?? '');
    if (s) Object.assign(f.details, inboundDetails(s, inbound.fills.get(s.pattern), inbound.served.get(s.pattern)));
  }
  for (const [pattern, fills] of inbound.fills) {
    const s = stats.get(pattern);
    if (!s || flagged.has(pattern)) continue;
    const served = inbound.served.get(pattern) ?? [];
    out.push({
      kind: 'cache-aside', severity: 'info',
      summary: `cache-aside on ${pattern}: hit ratio ${percent(s.hitRatio)} (${s.hits} of ${s.reads} reads); ${fills.length} fill${fills.length === 1 ? '' : 's'} (miss → database → SET), ${served.length} request${served.length === 1 ? '' : 's'} answered from the cache with no database call`,
      evidence: [...fillEvidence(fills[0]!), ...served.slice(0, 1).map((r) => evidence(r, 'a hit, in a request with no database call'))],
      details: { cause: 'hit-ratio', pattern, ...inboundDetails(s, fills, served) },
    });
  }
  return out;
}

function inboundDetails(s: CacheKeyStats, fills: FlowRecord[][] | undefined, served: FlowRecord[] | undefined): Record<string, unknown> {
  return { reads: s.reads, hits: s.hits, misses: s.misses, sets: s.sets, hitRatio: s.hitRatio, fills: fills?.length ?? 0, servedFromCache: served?.length ?? 0 };
}

/** The first fill, step by step: the miss, the database calls, the SET. */
function fillEvidence(seq: readonly FlowRecord[]): Evidence[] {
  return seq.map((r, i) => evidence(r, i === 0 ? 'a miss' : i === seq.length - 1 ? 'the SET that fills the cache' : 'the database call on the miss'));
}

const percent = (x: number | undefined) => (x === undefined ? 'n/a' : `${Math.round(x * 100)}%`);

// ---------------------------------------------------------------------------------------------
// keys never read again

function neverRead(ops: readonly CacheOp[], ctx: DetectContext, t: DetectorThresholds['cache-aside']): Finding[] {
  // Per key: its ops. A key is an orphan when it missed, was then written, and was never read after its first write.
  const byKey = new Map<string, CacheOp[]>();
  for (const op of ops) if (op.kind === 'read' || op.kind === 'write') (byKey.get(`${op.server} ${op.key}`) ?? byKey.set(`${op.server} ${op.key}`, []).get(`${op.server} ${op.key}`)!).push(op);
  const orphans: CacheOp[][] = [];
  for (const list of byKey.values()) {
    const miss = list.findIndex((o) => o.kind === 'read' && o.hit === false);
    if (miss < 0) continue;
    const write = list.findIndex((o, i) => i > miss && o.kind === 'write');
    if (write < 0 || list.some((o, i) => i > write && o.kind === 'read')) continue;
    if (list.some((o) => o.kind === 'read' && o.hit === true)) continue;
    orphans.push(list);
  }
  // Group by server and skeleton (the key with its variable tokens taken out), then name each group's parts.
  const groups = new Map<string, CacheOp[][]>();
  for (const list of orphans) {
    const k = `${list[0]!.server}\u0000${tokenize(list[0]!.key).skeleton.join('\u0001')}`;
    (groups.get(k) ?? groups.set(k, []).get(k)!).push(list);
  }
  const out: Finding[] = [];
  for (const lists of groups.values()) {
    if (lists.length < t.minKeys) continue;
    lists.sort((a, b) => a[0]!.flow.start - b[0]!.flow.start);
    const keys = lists.map((l) => l[0]!.key);
    const writes = lists.map((l) => l.find((o) => o.kind === 'write')!);
    const named = namePattern(keys, writes.map((o) => o.flow.start), writes.map(writtenValue));
    if (named.neverRepeating.length === 0) continue;
    const server = lists[0]![0]!.server;
    const n = lists.length;
    const ev: Evidence[] = lists.flatMap((l) => l.map((o) => evidence(o.flow, `${o.flow.request!.command} ${o.key}${o.kind === 'read' ? ': a miss' : ''}`)));
    out.push({
      kind: 'cache-aside', severity: n >= t.errorKeys ? 'error' : 'warning',
      summary: `${n} cache keys of pattern ${named.pattern} on ${ctx.names.name(lists[0]![0]!.flow.dst)} were written after a miss and never read again: ${named.neverRepeating.join(' and ')} in the key never repeats, so the cache never hits`,
      evidence: ev,
      details: {
        cause: 'keys-never-read', pattern: named.pattern, neverRepeating: named.neverRepeating, keys: n,
        exampleKeys: keys.slice(0, 5), keyPatterns: [...new Set(keys.map(keyPattern))], server,
      },
    });
  }
  return out;
}

/** A key's variable tokens (uuids, long hex runs with a digit, numbers) and the literal text around them. */
export function tokenize(key: string): { skeleton: string[]; values: string[] } {
  const re = /[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|(?=[0-9a-f]*\d)[0-9a-f]{16,}|\d+/gi;
  const skeleton: string[] = [], values: string[] = [];
  let last = 0;
  for (let m = re.exec(key); m; m = re.exec(key)) {
    skeleton.push(key.slice(last, m.index));
    values.push(m[0]);
    last = m.index + m[0].length;
  }
  skeleton.push(key.slice(last));
  return { skeleton, values };
}

/**
 * The common pattern of keys that share a skeleton, with each varying part named: {timestamp} (epoch
 * seconds, ms, µs or ns within a year of when the key was written), {uuid}, {hex}, {id} (other numbers);
 * a part with one value in every key stays literal. `neverRepeating`: the parts, distinct in every key,
 * that make each key new:
 * - a {timestamp};
 * - any other part when the same entity was cached again under a different key: two keys equal in every
 *   other part (the entity) that differ only in this part and were written with the same value (of at
 *   least MIN_ENTITY_VALUE characters, so flags and markers such as "1" or "OK" are not an entity's data).
 *   Key structure alone cannot tell `order:{id}:{requestId}` from `tenant:{id}:user:{id}` or
 *   `idem:{user}:{uuid}`; the same data written twice can. With no values known, only a timestamp counts.
 */
export function namePattern(keys: readonly string[], times: readonly number[] = [], values: readonly (string | undefined)[] = []): { pattern: string; neverRepeating: string[] } {
  const split = keys.map(tokenize);
  const skeleton = split[0]!.skeleton;
  const columns = split[0]!.values.map((_, i) => split.map((s) => s.values[i] ?? ''));
  const names = columns.map((vals) => nameOf(vals, times));
  const distinct = columns.map((vals) => new Set(vals).size);
  const neverRepeating: string[] = [];
  names.forEach((name, i) => {
    if (name === undefined || distinct[i] !== keys.length) return;
    if (name === '{timestamp}' || cachedAgain(split.map((s) => s.values), i, values)) neverRepeating.push(name);
  });
  let pattern = skeleton[0]!;
  names.forEach((name, i) => (pattern += (name ?? columns[i]![0]!) + skeleton[i + 1]!));
  return { pattern, neverRepeating: [...new Set(neverRepeating)] };
}

/** Shorter written values are flags, counters or markers, not an entity's data. */
const MIN_ENTITY_VALUE = 8;

/** Whether two keys equal in every part but `part` were written with the same value: one entity cached again under a new key. */
function cachedAgain(parts: readonly string[][], part: number, values: readonly (string | undefined)[]): boolean {
  const seen = new Map<string, Set<string>>();
  for (let k = 0; k < parts.length; k++) {
    const v = values[k];
    if (v === undefined || v.length < MIN_ENTITY_VALUE) continue;
    const entity = parts[k]!.filter((_, i) => i !== part).join('\u0000');
    const written = seen.get(entity) ?? seen.set(entity, new Set()).get(entity)!;
    if (written.has(v)) return true;
    written.add(v);
  }
  return false;
}

/** A part's name, or undefined when every key has the same value there. */
function nameOf(vals: readonly string[], times: readonly number[]): string | undefined {
  if (vals.length > 1 && new Set(vals).size === 1) return undefined;
  if (vals.every((v) => /^[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(v))) return '{uuid}';
  if (!vals.every((v) => /^\d+$/.test(v))) return '{hex}';
  return vals.every((v, i) => epochLike(Number(v), times[i])) ? '{timestamp}' : '{id}';
}

/** The value a write op wrote to its key (SET, SETNX, GETSET; SETEX, PSETEX, JSON.SET; the key's pair of MSET; HSET's fields and values). */
function writtenValue(op: CacheOp): string | undefined {
  const cmd = op.flow.request!.command.toUpperCase(), args = op.flow.request!.args;
  if (cmd === 'SETEX' || cmd === 'PSETEX' || cmd === 'JSON.SET') return args[2];
  if (cmd === 'MSET' || cmd === 'MSETNX') {
    for (let i = 0; i + 1 < args.length; i += 2) if (args[i] === op.key) return args[i + 1];
    return undefined;
  }
  if (cmd.startsWith('H')) return args.length > 1 ? args.slice(1).join('\u0000') : undefined;
  return args[1];
}

const YEAR = 366 * 24 * 3600;

/** Epoch seconds, ms, µs or ns: within a year of the write's capture time, or (no time known) in 2001–2100. */
function epochLike(n: number, at: number | undefined): boolean {
  for (const scale of [1, 1e3, 1e6, 1e9]) {
    const s = n / scale;
    if (at !== undefined && at > 1e9 ? Math.abs(s - at) < YEAR : s >= 1e9 && s < 4.1e9) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// with inbound requests

interface InboundUse {
  /** The Redis calls made while handling inbound requests. */
  calls: FlowRecord[];
  /** Key pattern → each miss → database → SET sequence: [the miss, the database calls…, the SET]. */
  fills: Map<string, FlowRecord[][]>;
  /** Key pattern → a hit of each request that made no database call (its first of the pattern). */
  served: Map<string, FlowRecord[]>;
  /** Database reads made for a key still fresh: the SET that made it fresh, the hit (or the read of unknown reply), the database call, the write of the key after it. */
  dbAfterSet: { pattern: string; key: string; set?: FlowRecord; hit?: FlowRecord; read?: FlowRecord; db: FlowRecord; again: CacheOp }[];
}

/** One step of a request's work: a cache op, or a database call. */
type Step = { op: CacheOp; db?: undefined } | { db: FlowRecord; op?: undefined };

const isDatabase = (r: FlowRecord) => recordModule(r).halves === 'sql';

function inboundUse(flows: readonly FlowRecord[], ops: readonly CacheOp[], ctx: DetectContext): InboundUse {
  const use: InboundUse = { calls: [], fills: new Map(), served: new Map(), dbAfterSet: [] };
  const byParent = new Map<FlowRecord, FlowRecord[]>();
  for (const r of flows) {
    const p = ctx.parents.get(r)?.parent;
    if (!p || !(isRedis(r) || isDatabase(r))) continue;
    (byParent.get(p) ?? byParent.set(p, []).get(p)!).push(r);
    if (isRedis(r)) use.calls.push(r);
  }
  if (byParent.size === 0) return use;
  // What each key's state was just before each op: replayed over every op, in capture order.
  const freshBefore = freshness(ops);
  const opsOf = new Map<FlowRecord, CacheOp[]>();
  for (const op of ops) (opsOf.get(op.flow) ?? opsOf.set(op.flow, []).get(op.flow)!).push(op);
  for (const calls of byParent.values()) {
    calls.sort((a, b) => a.start - b.start);
    const dbs = calls.filter(isDatabase);
    const steps: Step[] = calls.flatMap((r): Step[] => (isDatabase(r) ? [{ db: r }] : (opsOf.get(r) ?? []).map((op) => ({ op }))));
    if (dbs.length === 0) {
      // One per request and pattern: the first hit of a request the cache answered alone.
      const seen = new Set<string>();
      for (const s of steps) {
        const pattern = s.op?.kind === 'read' && s.op.hit ? keyPattern(s.op.key) : undefined;
        if (pattern === undefined || seen.has(pattern)) continue;
        seen.add(pattern);
        add(use.served, pattern, s.op!.flow);
      }
      continue;
    }
    const filled = new Set<CacheOp>();
    steps.forEach((s, i) => {
      if (!s.db) return;
      // The last key the request read before the call, and the first key it wrote after it.
      let r = i - 1;
      while (r >= 0 && steps[r]!.op?.kind !== 'read') r--;
      let w = i + 1;
      while (w < steps.length && steps[w]!.op?.kind !== 'write') w++;
      const before = r >= 0 ? steps[r]!.op : undefined, after = w < steps.length ? steps[w]!.op : undefined;
      if (!before) return;
      const pattern = keyPattern(before.key);
      if (before.hit === false && after && after.key === before.key && after.server === before.server) {
        if (filled.has(before)) return;
        filled.add(before);
        const between = steps.slice(r + 1, w).flatMap((x) => (x.db ? [x.db] : []));
        add(use.fills, pattern, [before.flow, ...between, after.flow]);
        return;
      }
      // A database call made although the cache held the key: read key K (a hit, or a read whose reply was
      // not seen while the model says K was set and fresh) → a database read → K (or a key of K's pattern)
      // written again. Only that shape ties the call to K: a write alone, or a read of another pattern, does not.
      if (before.hit === false || !isDatabaseRead(s.db)) return;
      const state = freshBefore.get(before);
      if (before.hit === undefined && state === undefined) return;
      const again = rewrite(steps, i, before);
      if (!again) return;
      use.dbAfterSet.push({ pattern, key: before.key, ...(state ? { set: state.set.flow } : {}), ...(before.hit ? { hit: before.flow } : { read: before.flow }), db: s.db, again });
    });
  }
  return use;
}

/**
 * The write after step `i` that ties the database call there to `read`'s key: the first write, before the
 * request reads again, of the same key or of a key of its pattern on the same server.
 */
function rewrite(steps: readonly Step[], i: number, read: CacheOp): CacheOp | undefined {
  const pattern = keyPattern(read.key);
  for (let j = i + 1; j < steps.length; j++) {
    const op = steps[j]!.op;
    if (!op) continue;
    if (op.kind === 'read') return undefined;
    if (op.kind === 'write' && op.server === read.server && (op.key === read.key || keyPattern(op.key) === pattern)) return op;
  }
  return undefined;
}

/**
 * Whether a database call read data: its SQL (or fingerprint) is a SELECT, `(SELECT …)`, or a `WITH … SELECT`
 * with no INSERT/UPDATE/DELETE/MERGE in it, and not `SELECT … FOR UPDATE/SHARE` (a write's lock); with no
 * SQL seen, an answer with rows or columns and no error (and, for PostgreSQL, a SELECT tag). Never DML
 * (INSERT, UPDATE, DELETE, REPLACE, MERGE), CALL, DDL or transaction control.
 */
export function isDatabaseRead(r: FlowRecord): boolean {
  if (!sqlHalves(r)) return false;
  const q = r.request, p = r.response;
  const text = (q?.query ?? q?.fingerprint ?? '').replace(/\/\*[\s\S]*?\*\/|--[^\n]*\n?/g, ' ').trim().replace(/^\(+\s*/, '').toLowerCase();
  if (text !== '') {
    if (/\bfor\s+(?:no\s+key\s+)?(?:update|share)\b|\block\s+in\s+share\s+mode\b/.test(text)) return false;
    if (/^select\b/.test(text)) return true;
    return /^with\b/.test(text) && /\bselect\b/.test(text) && !/\b(?:insert|update|delete|merge|replace)\b/.test(text);
  }
  if (!p || p.error) return false;
  if ('command' in p && typeof p.command === 'string' && !/^select\b/i.test(p.command)) return false;
  return p.rows !== undefined || (p.columns?.length ?? 0) > 0;
}

function add<T>(m: Map<string, T[]>, k: string, v: T): void {
  (m.get(k) ?? m.set(k, []).get(k)!).push(v);
}

interface Live { set: CacheOp; expiresAt: number | null }

/**
 * For each op, whether its own key was fresh just before it (set, not deleted, not expired): the
 * SET that made it so, or nothing. Only the op's own key is kept, so a long capture copies no maps.
 */
function freshness(ops: readonly CacheOp[]): Map<CacheOp, Live | undefined> {
  const live = new Map<string, Live>();
  const out = new Map<CacheOp, Live | undefined>();
  for (const op of ops) {
    const now = op.flow.start;
    const id = `${op.server} ${op.key}`;
    const cur = live.get(id);
    const alive = cur && (cur.expiresAt === null || cur.expiresAt > now) ? cur : undefined;
    out.set(op, alive);
    if (!alive && cur) live.delete(id);
    switch (op.kind) {
      case 'write':
        live.set(id, { set: op, expiresAt: op.expiresAt === undefined ? alive?.expiresAt ?? null : op.expiresAt });
        break;
      case 'expire':
        if (alive) live.set(id, { ...alive, expiresAt: op.expiresAt ?? null });
        break;
      case 'delete':
        live.delete(id);
        break;
      case 'flush':
        for (const k of [...live.keys()]) if (k.startsWith(`${op.server} `)) live.delete(k);
        break;
      case 'read':
        // A hit proves the key is there even when its SET was before the capture; a miss that it is not.
        if (op.hit === false) live.delete(id);
        break;
    }
  }
  return out;
}

function dbAfterSet(found: InboundUse['dbAfterSet'], ctx: DetectContext, t: DetectorThresholds['cache-aside']): Finding[] {
  const by = new Map<string, InboundUse['dbAfterSet']>();
  for (const x of found) add(by, `${endpoint((x.set ?? x.hit ?? x.db).dst)} ${x.pattern}`, x);
  const out: Finding[] = [];
  for (const list of by.values()) {
    if (list.length < t.minDbAfterSet) continue;
    const first = list[0]!;
    const afterHit = list.filter((x) => x.hit).length;
    out.push({
      kind: 'cache-aside', severity: list.length >= t.errorDbAfterSet ? 'error' : 'warning',
      summary: `${list.length} database reads for ${first.pattern} keys that were set and still fresh on ${ctx.names.name((first.set ?? first.hit ?? first.db).dst)} (${afterHit} right after a hit), each followed by writing the key again: the cache held the answer`,
      evidence: list.flatMap((x) => [
        ...(x.set ? [evidence(x.set, `SET ${x.key}`)] : []),
        ...(x.hit ? [evidence(x.hit, `GET ${x.key}: a hit`)] : []), ...(x.read ? [evidence(x.read, `read of ${x.key}, reply not seen, while the key was fresh`)] : []),
        evidence(x.db, `database read for ${x.key}`), evidence(x.again.flow, `${x.again.flow.request!.command} ${x.again.key} after the database read`),
      ]),
      details: { cause: 'db-after-set', pattern: first.pattern, count: list.length, afterHit, keys: [...new Set(list.map((x) => x.key))].slice(0, 5), keyPatterns: [first.pattern] },
    });
  }
  return out;
}
