import { RECORDS, recordModule, redisKeyPattern, type FlowRecord, type RedisFlow } from '../flows/index.js';
import { endpoint } from '../common/index.js';

/**
 * What a Redis cache did, key by key: reads that hit or missed, writes, deletes and expiries, in
 * capture order. The cache-aside detector, `tapwire diff` and the spec's `cache` assertion all read
 * the cache through this one module, so they agree on what a hit is.
 *
 * Commands are classified by name (redis.io/commands). Only the commands a cache uses are
 * counted; lists, sets, streams and scripts are not cache reads.
 */

/** Single-key reads. A nil reply is a miss (RESP2 null bulk, RESP3 `_`); HGETALL's empty map and EXISTS 0 too. */
const READS = new Set(['GET', 'GETEX', 'GETDEL', 'HGET', 'HGETALL', 'HMGET', 'EXISTS', 'JSON.GET']);
/** Reads of several keys, one element of the reply per key. */
const MULTI_READS = new Set(['MGET']);
/** Writes of one key (its first argument). SET and GETEX carry their expiry in options. */
const WRITES = new Set(['SET', 'SETEX', 'PSETEX', 'SETNX', 'HSET', 'HMSET', 'HSETNX', 'JSON.SET', 'GETSET']);
/** MSET key value key value … */
const MULTI_WRITES = new Set(['MSET', 'MSETNX']);
const DELETES = new Set(['DEL', 'UNLINK']);
const EXPIRES = new Set(['EXPIRE', 'PEXPIRE', 'EXPIREAT', 'PEXPIREAT', 'PERSIST']);
const FLUSHES = new Set(['FLUSHDB', 'FLUSHALL']);

export type CacheOpKind = 'read' | 'write' | 'delete' | 'expire' | 'flush';

/** One thing a command did to one key. */
export interface CacheOp {
  flow: RedisFlow;
  /** The Redis server, "ip:port": a key lives on one server. */
  server: string;
  /** The key; "" for a flush (every key of the server). */
  key: string;
  kind: CacheOpKind;
  /** Reads: whether it found a value; undefined when the reply is not known (none seen, cut preview). */
  hit?: boolean;
  /**
   * Writes and expiries: when the key expires, in capture seconds; null for no expiry (PERSIST, SET
   * without EX); undefined when the command keeps the key's expiry (SET … KEEPTTL, HSET).
   */
  expiresAt?: number | null;
}

export interface CacheKeyStats {
  /** The key with its numbers and long hex runs as placeholders ("order:{n}"), as `operation()` names Redis keys. */
  pattern: string;
  /** Reads whose outcome is known: hits + misses. */
  reads: number;
  hits: number;
  misses: number;
  sets: number;
  /** hits / reads; undefined with no reads. */
  hitRatio: number | undefined;
  /** Distinct keys (per server) of the pattern that were read or written. */
  keys: number;
  /** Keys that were written and never read again afterwards, in this capture. */
  keysNeverReadAfterSet: number;
  /** Up to MAX_EXAMPLE_KEYS keys of the pattern, first seen first. */
  exampleKeys: string[];
}

export const MAX_EXAMPLE_KEYS = 5;

/** Whether the record is a Redis command (its module is Redis's, asked through the registry). */
export function isRedis(r: FlowRecord): r is RedisFlow {
  return recordModule(r) === (RECORDS.redis as unknown);
}

/** The key with placeholders, as the Redis record module names operations ("order:{n}:{n}"). */
export { redisKeyPattern as keyPattern };

/** Per key pattern: reads, hits, misses, writes and keys never read after they were set, over the flows' Redis commands. */
export function cacheKeyStats(flows: readonly FlowRecord[]): CacheKeyStats[] {
  const by = new Map<string, CacheKeyStats & { seen: Set<string>; lastWrite: Map<string, boolean> }>();
  for (const op of cacheOps(flows)) {
    if (op.kind === 'flush') continue;
    const pattern = redisKeyPattern(op.key);
    let s = by.get(pattern);
    if (!s) {
      s = { pattern, reads: 0, hits: 0, misses: 0, sets: 0, hitRatio: undefined, keys: 0, keysNeverReadAfterSet: 0, exampleKeys: [], seen: new Set(), lastWrite: new Map() };
      by.set(pattern, s);
    }
    const id = `${op.server} ${op.key}`;
    if (op.kind === 'read' || op.kind === 'write') {
      if (!s.seen.has(id)) {
        s.seen.add(id);
        if (s.exampleKeys.length < MAX_EXAMPLE_KEYS) s.exampleKeys.push(op.key);
      }
    }
    if (op.kind === 'read') {
      s.lastWrite.set(id, false);
      if (op.hit === undefined) continue;
      s.reads++;
      if (op.hit) s.hits++;
      else s.misses++;
    } else if (op.kind === 'write') {
      s.sets++;
      s.lastWrite.set(id, true);
    }
  }
  return [...by.values()].map(({ seen, lastWrite, ...s }) => ({
    ...s,
    keys: seen.size,
    keysNeverReadAfterSet: [...lastWrite.values()].filter(Boolean).length,
    hitRatio: s.reads > 0 ? Math.round((s.hits / s.reads) * 1000) / 1000 : undefined,
  }));
}

/** The cache operations of the flows' Redis commands, in capture order (a command's start). Failed commands did nothing. */
export function cacheOps(flows: readonly FlowRecord[]): CacheOp[] {
  const out: CacheOp[] = [];
  const redis = flows.filter(isRedis).sort((a, b) => a.start - b.start);
  for (const r of redis) out.push(...opsOf(r));
  return out;
}

/** What one command did; nothing for commands a cache does not use, errors, and commands queued in a discarded MULTI. */
export function opsOf(r: RedisFlow): CacheOp[] {
  const q = r.request, p = r.response;
  if (!q || p?.type === 'error') return [];
  // A command of an executed MULTI carries its element of EXEC's reply; one still answered QUEUED was
  // discarded (or its EXEC not seen) and did nothing.
  if (p?.type === 'simple' && p.value === 'QUEUED') return [];
  const server = endpoint(r.dst);
  const cmd = q.command.toUpperCase(), args = q.args;
  const op = (key: string, kind: CacheOpKind, more: Partial<CacheOp> = {}): CacheOp => ({ flow: r, server, key, kind, ...more });
  if (READS.has(cmd) && args[0] !== undefined) {
    const ops = [op(args[0], 'read', { hit: !p ? undefined : readHit(cmd, p.type, p.value, p.length) })];
    if (cmd === 'GETDEL') ops.push(op(args[0], 'delete'));
    if (cmd === 'GETEX') {
      const exp = expiryOption(args.slice(1), r.start);
      if (exp !== undefined) ops.push(op(args[0], 'expire', { expiresAt: exp }));
    }
    return ops;
  }
  if (MULTI_READS.has(cmd)) {
    const elems = !p ? [] : listElements(p.value);
    return args.map((k, i) => op(k, 'read', { hit: elems[i] === undefined ? undefined : elems[i] !== '(nil)' }));
  }
  if (WRITES.has(cmd) && args[0] !== undefined) {
    // SET … NX (or XX) whose condition failed wrote nothing: its reply is nil, unless GET asked for the old value.
    const opts = args.slice(2).map((a) => a.toUpperCase());
    if (p?.type === 'nil' && cmd === 'SET' && (opts.includes('NX') || opts.includes('XX')) && !opts.includes('GET')) return [];
    if (p?.type === 'integer' && p.value === '0' && (cmd === 'SETNX' || cmd === 'HSETNX')) return [];
    return [op(args[0], 'write', { expiresAt: writeExpiry(cmd, args, r.start) })];
  }
  if (MULTI_WRITES.has(cmd)) {
    const ops: CacheOp[] = [];
    for (let i = 0; i + 1 < args.length; i += 2) ops.push(op(args[i]!, 'write', { expiresAt: null }));
    return ops;
  }
  if (DELETES.has(cmd)) return args.map((k) => op(k, 'delete'));
  if (EXPIRES.has(cmd) && args[0] !== undefined) {
    // EXPIRE's reply 0: the key did not exist (or an NX/XX/GT/LT condition failed): nothing changed.
    if (p?.type === 'integer' && p.value === '0') return [];
    return [op(args[0], 'expire', { expiresAt: expireAt(cmd, args[1], r.start) })];
  }
  if (FLUSHES.has(cmd)) return [op('', 'flush')];
  return [];
}

/** Whether a read found its key: not nil, not an empty aggregate, not EXISTS 0. */
function readHit(cmd: string, type: string, value: string | undefined, length: number | undefined): boolean {
  if (type === 'nil') return false;
  if (cmd === 'EXISTS') return value !== '0';
  if (cmd === 'HMGET') return listElements(value).some((e) => e !== '(nil)');
  if (type === 'array' || type === 'map' || type === 'set') return (length ?? 0) > 0;
  return true;
}

/** The elements of an aggregate's preview (`["a", "(nil)", …]`), as far as the preview goes. */
function listElements(value: string | undefined): string[] {
  if (value === undefined || !value.startsWith('[')) return [];
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    try {
      out.push(JSON.parse(`"${m[1]!}"`) as string);
    } catch {
      out.push(m[1]!);
    }
  }
  // A preview cut short ends in an unterminated string, which the pattern does not match: that
  // element and the ones after it stay unknown.
  return out;
}

/** When a write makes its key expire: SET's EX/PX/EXAT/PXAT (KEEPTTL keeps it), SETEX, PSETEX; hashes keep theirs. */
function writeExpiry(cmd: string, args: readonly string[], now: number): number | null | undefined {
  if (cmd === 'SETEX') return seconds(args[1], now, 1);
  if (cmd === 'PSETEX') return seconds(args[1], now, 0.001);
  if (cmd === 'SET' || cmd === 'GETSET' || cmd === 'SETNX') {
    if (cmd === 'SET' && args.slice(2).some((a) => a.toUpperCase() === 'KEEPTTL')) return undefined;
    return (cmd === 'SET' ? expiryOption(args.slice(2), now) : undefined) ?? null;
  }
  // HSET and friends change fields and keep the key's expiry.
  return undefined;
}

/** An expiry option among a command's arguments (EX s, PX ms, EXAT s, PXAT ms; GETEX's PERSIST), as capture seconds. */
function expiryOption(opts: readonly string[], now: number): number | null | undefined {
  for (let i = 0; i < opts.length; i++) {
    const o = opts[i]!.toUpperCase(), v = opts[i + 1];
    if (o === 'EX') return seconds(v, now, 1);
    if (o === 'PX') return seconds(v, now, 0.001);
    if (o === 'EXAT') return seconds(v, 0, 1);
    if (o === 'PXAT') return seconds(v, 0, 0.001);
    if (o === 'PERSIST') return null;
  }
  return undefined;
}

function expireAt(cmd: string, arg: string | undefined, now: number): number | null {
  switch (cmd) {
    case 'EXPIRE': return seconds(arg, now, 1) ?? null;
    case 'PEXPIRE': return seconds(arg, now, 0.001) ?? null;
    case 'EXPIREAT': return seconds(arg, 0, 1) ?? null;
    case 'PEXPIREAT': return seconds(arg, 0, 0.001) ?? null;
    default: return null; // PERSIST
  }
}

/** base + n × unit, for an argument that is an integer; undefined for anything else (a cut or odd argument). */
function seconds(arg: string | undefined, base: number, unit: number): number | undefined {
  if (arg === undefined || !/^-?\d+$/.test(arg)) return undefined;
  return base + Number(arg) * unit;
}
