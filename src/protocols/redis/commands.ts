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
 * Which arguments are secrets, by position: AUTH's (password, or username and password),
 * HELLO's AUTH pair, MIGRATE's AUTH/AUTH2, CONFIG SET of a password setting, ACL SETUSER's
 * ">password" rules. Arguments named like a secret are redacted too (see secretLooking).
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
  } else if (command === 'CONFIG' && args[0]?.toUpperCase() === 'SET') {
    for (let i = 1; i + 1 < args.length; i += 2) if (/pass|auth|secret|key/i.test(args[i]!)) out.add(i + 1);
  } else if (command === 'ACL' && args[0]?.toUpperCase() === 'SETUSER') {
    args.forEach((a, i) => {
      if (i > 1 && (a.startsWith('>') || a.startsWith('#') || a.startsWith('<') || a.startsWith('!'))) out.add(i);
    });
  }
  // A value stored under a key named like a secret (SET session:token:1 …, HSET user password …).
  for (let i = 0; i + 1 < args.length; i++) if (secretLooking(args[i]!)) out.add(i + 1);
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
