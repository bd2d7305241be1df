import type { ConnectionInfo } from '../../stream/index.js';
import type { Exchange, RedisExchange } from '../../protocols/index.js';
import type { RedisFlow, RedisRecordRequest, RedisRecordResponse, RedisSessionRecord } from '../record.js';
import { secretLooking } from '../../protocols/index.js';
import type { RecordModule } from './module.js';
import { markIncomplete, spanEnvelope, type PartBuilder } from './part.js';

/** Commands that are not work: connection setup, health checks, transaction control. */
const SETUP = new Set(['PING', 'HELLO', 'AUTH', 'SELECT', 'CLIENT', 'ECHO', 'QUIT', 'RESET', 'COMMAND', 'INFO']);
const TRANSACTION = new Set(['MULTI', 'EXEC', 'DISCARD', 'WATCH', 'UNWATCH']);
/**
 * Commands that wait by design until data comes or their timeout ends (redis.io/commands: "blocking"):
 * their duration is the wait. XREAD and XREADGROUP block only with a BLOCK argument.
 */
const BLOCKING = new Set(['BLPOP', 'BRPOP', 'BRPOPLPUSH', 'BLMOVE', 'BLMPOP', 'BZPOPMIN', 'BZPOPMAX', 'BZMPOP', 'WAIT', 'WAITAOF']);

function blocking(r: RedisFlow): boolean {
  const q = r.request;
  if (!q) return false;
  if (BLOCKING.has(q.command)) return true;
  return (q.command === 'XREAD' || q.command === 'XREADGROUP') && q.args.some((a) => a.toUpperCase() === 'BLOCK');
}

/**
 * A client library's probe at connect, whose error it expects from older servers and ignores:
 * CLIENT SETINFO's "unknown subcommand" (before Redis 7.2; ioredis, node-redis, redis-py and
 * go-redis send it), HELLO's NOPROTO or "unknown command" (before Redis 6, or RESP3 not offered),
 * COMMAND DOCS (redis-cli). Such an error is neither a failure nor a problem; any other error of
 * these commands is (HELLO 3 AUTH's WRONGPASS, NOAUTH).
 */
function probe(r: RedisFlow): boolean {
  const q = r.request, e = r.response?.error;
  if (!q || e === undefined) return false;
  const sub = q.args[0]?.toUpperCase();
  if (q.command === 'HELLO') return /^NOPROTO\b|^ERR unknown command\b/i.test(e);
  if (q.command === 'CLIENT' && sub === 'SETINFO') return /^ERR unknown subcommand\b/i.test(e);
  return q.command === 'COMMAND' && sub === 'DOCS';
}

/**
 * A key with its numbers, UUIDs (RFC 9562's 8-4-4-4-12 hex form) and long hex runs as placeholders:
 * "order:{n}:{n}", "session:{id}". A UUID is masked whole: its parts are short hex runs and numbers.
 */
export function keyPattern(key: string): string {
  return key.replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|[0-9]+/gi, (m) => (/^\d+$/.test(m) ? '{n}' : '{id}'));
}

/** The error's code: its first word when upper-case ("ERR", "WRONGTYPE", "NOAUTH"), as Redis sends them. */
function errorCode(e: string): string {
  return /^[A-Z]+\b/.exec(e)?.[0] ?? 'ERR';
}

/** A Redis command and its reply: same envelope, the halves, and the RESP version and transaction. Field order is the contract's. */
function build(tx: Exchange, conn: ConnectionInfo, n: number, b: PartBuilder): RedisFlow {
  const x = (tx as RedisExchange).redis;
  const req = x.request, resp = x.response;
  const r: RedisFlow = spanEnvelope('redis', conn, n, req, resp);
  if (req) {
    const out = { start: req.start, end: req.end } as RedisRecordRequest;
    if (b.opts.frames) out.frames = req.frames;
    out.size = req.size;
    out.command = req.command;
    const red = b.opts.redactor;
    const secret = new Set(req.secrets ?? []);
    out.args = red && secret.size > 0 ? req.args.map((a, i) => (secret.has(i) ? red.token(a) : a)) : req.args;
    if (req.argc > req.args.length) out.argc = req.argc;
    if (req.key !== undefined) out.key = red && secret.has(0) ? red.token(req.key) : req.key;
    if (req.inline) out.inline = true;
    r.request = out;
  }
  if (resp) {
    const out: RedisRecordResponse = { start: resp.start, end: resp.end, size: resp.size, type: resp.type };
    if (b.opts.frames) out.frames = resp.frames;
    if (resp.value !== undefined) out.value = redactValue(resp.value, resp.secrets, wholeSecret(req), b);
    if (resp.length !== undefined) out.length = resp.length;
    if (resp.error !== undefined) out.error = resp.error;
    if (resp.channel !== undefined) out.channel = resp.channel;
    if (resp.pattern !== undefined) out.pattern = resp.pattern;
    if (resp.message !== undefined) out.message = resp.message;
    r.response = out;
  }
  const own: RedisSessionRecord = { resp: x.resp };
  if (x.transaction !== undefined) own.transaction = x.transaction;
  if (x.queued) own.queued = true;
  r.redis = own;
  markIncomplete(r, tx.incomplete);
  return r;
}

/** The reply is a secret whole: its key is named like one (GET api_token), or HGET's field is (HGET user:1 password). */
function wholeSecret(req: RedisExchange['redis']['request']): boolean {
  if (!req) return false;
  if (req.key !== undefined && secretLooking(req.key)) return true;
  return req.command === 'HGET' && req.args[1] !== undefined && secretLooking(req.args[1]);
}

/**
 * A reply's value with its secrets as keyed-hash tokens: the whole value when `whole`, else each
 * string the session marked (after a secret-looking name in an aggregate, HMGET's secret-looking
 * fields, CONFIG GET's password settings).
 */
function redactValue(value: string, secrets: string[] | undefined, whole: boolean, b: PartBuilder): string {
  const red = b.opts.redactor;
  if (!red) return value;
  if (whole) return red.token(value);
  let out = value;
  for (const s of secrets ?? []) out = out.split(JSON.stringify(s)).join(JSON.stringify(red.token(s)));
  return out;
}

function callText(r: RedisFlow): string | undefined {
  const q = r.request;
  if (!q) return r.response?.channel !== undefined ? `PUSH ${r.response.channel}` : undefined;
  const s = [q.command, ...q.args].join(' ');
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** Redis (RESP2 and RESP3): a call is a command, keyed by its name, key and arguments. */
export const redis: RecordModule<RedisFlow> = {
  protocol: 'redis',
  title: 'Redis',
  column: 'redis',
  halves: 'command',
  pathParams: false,
  build,
  operation(r) {
    const q = r.request;
    if (!q) return undefined;
    return q.key !== undefined ? `${q.command} ${keyPattern(q.key)}` : q.command;
  },
  callKey(r, dst) {
    const q = r.request;
    return q ? `redis ${dst} ${q.command} ${JSON.stringify(q.args)}` : undefined;
  },
  answer: (r) => {
    const p = r.response!;
    return [p.type, p.value, p.error];
  },
  callName: (r, server, named) => `redis ${callText(r) ?? '?'}${named ? ` on ${server}` : ''}`,
  operationName: (op) => `redis ${op}`,
  // A nil reply is a miss, not a failure; an unanswered command on a reset connection is one.
  failed: (r) => (r.response ? r.response.type === 'error' && !probe(r) : r.incompleteReason === 'connection-rst'),
  problem(r, dst) {
    const e = r.response?.error;
    if (e === undefined || probe(r)) return undefined;
    const code = errorCode(e);
    // By command too: ERR is Redis's catch-all, and a script's ERR is not a bad argument's.
    return { key: `redis ${dst} ${r.request?.command ?? ''} ${code}`, label: `Redis ${code} (${e})`, clientError: false };
  },
  routine(r) {
    const c = r.request?.command ?? '';
    return TRANSACTION.has(c) ? 'transaction-control' : SETUP.has(c) ? 'health-check' : undefined;
  },
  // The call's name already shows its arguments.
  repeatDetail: () => '',
  cacheServer: true,
  blocking,
  outcome(r) {
    const e = r.response?.error;
    return { label: r.response ? (e !== undefined ? errorCode(e) : 'ok') : 'no-response', error: e !== undefined };
  },
  rowCall: callText,
  rowStatus(r) {
    const s = r.response;
    return s?.error !== undefined ? errorCode(s.error) : s?.type;
  },
  table(r) {
    const q = r.request, s = r.response;
    const notes: string[] = [];
    if (s?.error !== undefined) notes.push(s.error);
    else if (s?.message !== undefined) notes.push(s.message);
    else if (s?.value !== undefined) notes.push(s.value.length > 60 ? `${s.value.slice(0, 60)}…` : s.value);
    if (r.redis?.transaction !== undefined) notes.push(`MULTI #${r.redis.transaction}`);
    return {
      method: (q?.command ?? 'PUSH').slice(0, 7),
      status: s?.error !== undefined ? errorCode(s.error) : s?.type ?? '-',
      what: q ? (q.key ?? q.args.join(' ')) : (s?.channel ?? ''),
      notes,
      tail: [],
    };
  },
  filterVariables: {},
};
