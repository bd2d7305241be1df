/*
 * What tapwire knows of Redis commands by name (redis.io/commands, "key_specs" in COMMAND DOCS):
 * where the key is, which arguments are secrets, and which commands change the session's state.
 */

/** Commands whose first argument is a key (the common ones; COMMAND INFO has the full list). */
const FIRST_ARG_KEY = new Set(`
APPEND BITCOUNT BITFIELD BITPOS DECR DECRBY DEL DUMP EXISTS EXPIRE EXPIREAT EXPIRETIME GET GETBIT GETDEL GETEX
GETRANGE GETSET HDEL HEXISTS HGET HGETALL HINCRBY HINCRBYFLOAT HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET
HSETNX HSTRLEN HVALS INCR INCRBY INCRBYFLOAT LINDEX LINSERT LLEN LMOVE LPOP LPOS LPUSH LPUSHX LRANGE LREM LSET
LTRIM MGET MSET MSETNX PERSIST PEXPIRE PEXPIREAT PEXPIRETIME PFADD PFCOUNT PSETEX PTTL RENAME RENAMENX RESTORE
RPOP RPOPLPUSH RPUSH RPUSHX SADD SCARD SDIFF SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SINTER SINTERSTORE
SISMEMBER SMEMBERS SMISMEMBER SMOVE SORT SPOP SRANDMEMBER SREM SSCAN STRLEN SUNION SUNIONSTORE TOUCH TTL TYPE
UNLINK WATCH XACK XADD XCLAIM XDEL XLEN XPENDING XRANGE XREVRANGE XTRIM ZADD ZCARD ZCOUNT ZINCRBY ZLEXCOUNT
ZMSCORE ZPOPMAX ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANK ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK
ZREMRANGEBYSCORE ZREVRANGE ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE GEOADD GEODIST GEOHASH GEOPOS
GEOSEARCH BLPOP BRPOP BRPOPLPUSH BLMOVE BZPOPMIN BZPOPMAX`.split(/\s+/).filter(Boolean));

/** The key of a command: its first argument for the commands above, EVAL's first key, or none. */
export function keyOf(command: string, args: readonly string[]): string | undefined {
  if (FIRST_ARG_KEY.has(command)) return args[0];
  // EVAL script numkeys key … (and EVALSHA, FCALL): the first key, when there is one.
  if ((command === 'EVAL' || command === 'EVALSHA' || command === 'FCALL' || command === 'FCALL_RO') && Number(args[1]) > 0) return args[2];
  return undefined;
}

/**
 * Where a command's stored values are, for a key named like a secret: their positions in args
 * (the key is at 0). TTLs, offsets and options are not values (SETEX's 60
 * stays readable: the cache verifier reads it).
 */
const VALUE_AT = new Map<string, (args: readonly string[]) => number[]>(Object.entries({
  SET: () => [1], SETNX: () => [1], GETSET: () => [1], APPEND: () => [1],
  SETEX: () => [2], PSETEX: () => [2], SETRANGE: () => [2], LSET: () => [2], LINSERT: () => [2, 3],
  LPUSH: rest, RPUSH: rest, LPUSHX: rest, RPUSHX: rest, SADD: rest, LREM: () => [2],
}));
function rest(args: readonly string[]): number[] {
  return args.map((_, i) => i).filter((i) => i > 0);
}
/** Commands of field/value (or key/value) pairs: the value of a pair whose name looks secret is one. */
const PAIRS_FROM = new Map<string, number>(Object.entries({ HSET: 1, HMSET: 1, HSETNX: 1, MSET: 0, MSETNX: 0 }));

/** A configuration parameter holding a secret: requirepass, masterauth, tls-key-file-pass … (not tls-auth-clients' yes/no). */
export function secretParameter(name: string): boolean {
  return /pass|secret|auth$/i.test(name) || secretLooking(name);
}

/**
 * Which arguments are secrets, by position: AUTH's (password, or username and password),
 * HELLO's AUTH pair, MIGRATE's AUTH/AUTH2, CONFIG SET of a password setting, ACL SETUSER's
 * ">password" rules; a value stored under a key named like a secret, at the command's value
 * position (SET api_token v, SETEX api_token 60 v), and the value of a secret-looking field
 * (HSET user:1 password v, MSET api_token v). Commands not known here: an argument right after a
 * secret-looking name.
 */
export function secretArgs(command: string, args: readonly string[]): Set<number> {
  const out = new Set<number>();
  if (command === 'AUTH') args.forEach((_, i) => out.add(i));
  else if (command === 'HELLO' || command === 'MIGRATE') {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!.toUpperCase();
      if (a === 'AUTH' || a === 'AUTH2') {
        out.add(i + 1);
        out.add(i + 2);
      }
    }
  } else if (command === 'CONFIG') {
    if (args[0]?.toUpperCase() === 'SET') for (let i = 1; i + 1 < args.length; i += 2) if (secretParameter(args[i]!) || /key/i.test(args[i]!)) out.add(i + 1);
  } else if (command === 'ACL') {
    if (args[0]?.toUpperCase() === 'SETUSER') {
      args.forEach((a, i) => {
        if (i > 1 && (a.startsWith('>') || a.startsWith('#') || a.startsWith('<') || a.startsWith('!'))) out.add(i);
      });
    }
  } else if (VALUE_AT.has(command)) {
    if (args[0] !== undefined && secretLooking(args[0])) for (const i of VALUE_AT.get(command)!(args)) if (i < args.length) out.add(i);
  } else if (PAIRS_FROM.has(command)) {
    const from = PAIRS_FROM.get(command)!;
    const all = from > 0 && args[0] !== undefined && secretLooking(args[0]);
    for (let i = from; i + 1 < args.length; i += 2) if (all || secretLooking(args[i]!)) out.add(i + 1);
  } else if (!FIRST_ARG_KEY.has(command) || command === 'XADD') {
    // XADD key … field value …, EVAL, module commands: the argument after a secret-looking name.
    for (let i = 0; i + 1 < args.length; i++) if (secretLooking(args[i]!)) out.add(i + 1);
  }
  return out;
}

/** A name that says its value is a secret: password, token, secret, api key, credential. */
export function secretLooking(name: string): boolean {
  return /passw(or)?d|secret|token|api[-_]?key|credential|private[-_]?key|session[-_]?id/i.test(name);
}

/** Replies that are pub/sub confirmations (RESP2: arrays in subscribed mode; RESP3: pushes). */
export const SUBSCRIBE_KINDS = new Set(['subscribe', 'psubscribe', 'ssubscribe', 'unsubscribe', 'punsubscribe', 'sunsubscribe']);
/** Pub/sub messages the server pushes: "message" channel payload, "pmessage" pattern channel payload. */
export const MESSAGE_KINDS = new Set(['message', 'pmessage', 'smessage']);
