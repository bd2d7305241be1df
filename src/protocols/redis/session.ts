import type { CloseReason, Dir, StreamMeta } from '../../stream/index.js';
import { type ClientView, type Pending, Pairing, type PairingHooks, type PairingLimits, UNPAIRED } from '../pairing.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import { keyOf, MESSAGE_KINDS, secretArgs, secretLooking, secretParameter, SUBSCRIBE_KINDS } from './commands.js';
import { probeRedis } from './probe.js';
import { MAX_ITEMS, preview, type RespMessage, RespParser, type RespValue, type Where } from './resp.js';
import type { RedisCommand, RedisExchange, RedisReply, RedisTransaction } from './types.js';

/** Bytes of each argument and string reply kept (keys are rarely longer; values are previews). */
export const ARG_KEEP = 512;
/** Characters of a reply's `value` preview. */
export const VALUE_PREVIEW = 256;
/** Commands queued in one MULTI held until its EXEC; past it they are reported with their QUEUED reply. */
export const MAX_QUEUED = 1000;
/** Bytes held while resuming after a loss, until the probe can say whether a message starts there. */
export const MAX_HELD = 512;

export const REDIS_LIMITS: PairingLimits = { maxPendingRequests: 1000, maxPendingBytes: 16 * 1024 * 1024, maxUnparsed: 1000 };

/** A command awaiting its reply. */
interface Cmd {
  cmd: RedisCommand;
  /** The MULTI it was sent in. */
  tx?: number;
  /** The server answered QUEUED: its result is its element of EXEC's reply. */
  queued?: true;
  /** Already reported (a queued command leaves the pairing before it is). */
  emitted?: true;
}
type P = Pending<Cmd, RedisReply>;

/** The words of a command array (bulk or simple strings), or undefined when it is not one. */
function words(v: RespValue): string[] | undefined {
  if (v.type !== 'array' || !v.items || v.items.length === 0) return undefined;
  const out: string[] = [];
  for (const it of v.items) {
    if (it.str === undefined) return undefined;
    out.push(it.str);
  }
  return out;
}

function span(m: RespMessage): { start: number; end: number; frames: [number, number]; size: number } {
  return { start: m.startTime, end: m.endTime, frames: [m.startFrame, m.endFrame], size: m.endOff - m.off };
}

/** A value as a reply's type, preview and error. */
export function replyOf(v: RespValue, base: { start: number; end: number; frames: [number, number]; size: number }): RedisReply {
  const r: RedisReply = { start: base.start, end: base.end, frames: base.frames, size: base.size, type: v.type };
  if (v.type === 'error') r.error = v.str ?? '';
  else if (v.type !== 'nil') r.value = preview(v, VALUE_PREVIEW);
  if (v.length !== undefined) r.length = v.length;
  if (v.items !== undefined && v.items.length > 1) {
    const secrets = secretValues(v.items);
    if (secrets.length > 0) r.secrets = secrets;
  }
  return r;
}

/** Strings of an aggregate reply right after a secret-looking name (HGETALL's field/value pairs, CONFIG GET's). */
function secretValues(items: RespValue[], looks: (name: string) => boolean = secretLooking): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < items.length; i++) {
    const name = items[i]!.str, value = items[i + 1]!.str;
    if (name !== undefined && value && looks(name)) out.push(value);
  }
  return out;
}

/**
 * The secrets of a reply that only its command tells: CONFIG GET's values of password settings
 * (requirepass, masterauth), HMGET's values of secret-looking fields, by position. (HGET of such a
 * field is a whole value: the record module tokenises it from the command.)
 */
export function commandSecrets(c: RedisCommand, v: RespValue, r: RedisReply): void {
  const items = v.items;
  if (!items || items.length === 0) return;
  let found: string[] = [];
  if (c.command === 'CONFIG' && c.args[0]?.toUpperCase() === 'GET') found = secretValues(items, secretParameter);
  else if (c.command === 'HMGET') {
    items.forEach((it, j) => {
      const field = c.args[j + 1];
      if (field !== undefined && it.str && secretLooking(field)) found.push(it.str);
    });
  }
  const all = new Set([...(r.secrets ?? []), ...found]);
  if (all.size > 0) r.secrets = [...all];
}

/**
 * Redis on one connection (RESP2 and RESP3, redis.io/docs/reference/protocol-spec). The server
 * answers commands in the order it read them, also when the client pipelines, so commands queue
 * and replies pair in order through the shared Pairing (by TCP acknowledgements after a loss).
 * One record per command: MULTI's queued commands are held until EXEC and take their element of
 * its reply, tied by a transaction number; pub/sub messages the server pushes are records alone.
 * After a gap or malformed input a direction resumes at the next segment that starts like a
 * message (a RESP header line at a segment start, as the probe reads it).
 */
export class RedisSession implements ProtocolSession, PairingHooks<Cmd, RedisReply> {
  private readonly parsers: [RespParser, RespParser];
  private readonly pairing: Pairing<Cmd, RedisReply>;
  private readonly view: ClientView = { partialOff: -1, partialAck: -1, scanOff: -1, heldOff: -1, heldAck: -1 };
  private readonly where: Where = { time: 0, frame: 0, offset: 0, peerAck: -1 };
  /** Per direction: bytes are being skipped until a segment starts like a message. */
  private readonly lost: [boolean, boolean];
  private resp: 2 | 3 = 2;
  /** The transaction being queued (MULTI answered +OK), 0 when none; and the last number given. */
  private multi = 0;
  private txCount = 0;
  /** Commands answered QUEUED, waiting for EXEC's reply. */
  private queued: P[] = [];
  /** Subscription confirmations still to come for the last (UN)SUBSCRIBE, absorbed without records. */
  private confirm: { kind: string; left: number } | undefined;
  /** Channels and patterns subscribed to (RESP2: pushes are plain arrays while this is above 0). */
  private subscribed = 0;
  private ended = false;
  /** Per direction, while resuming: the start of a segment the probe could not judge yet. */
  private readonly pending: [{ bytes: Buffer; meta: StreamMeta } | undefined, { bytes: Buffer; meta: StreamMeta } | undefined] = [undefined, undefined];

  constructor(private readonly ctx: SessionContext) {
    const whole = ctx.conn.handshakeSeen && ctx.resync !== true;
    this.pairing = new Pairing<Cmd, RedisReply>(REDIS_LIMITS, this, whole, ctx.conn.handshakeSeen);
    this.lost = whole ? [false, false] : [true, true];
    this.parsers = [new RespParser(ARG_KEEP, true, (m) => this.command(m)), new RespParser(ARG_KEEP, false, (m) => this.reply(m))];
  }

  // ---- PairingHooks ----------------------------------------------------------------------------

  retired(p: P): void {
    this.emit(p, p.done);
  }

  evicted(p: P): void {
    this.emit(p, p.done ?? UNPAIRED.evicted);
  }

  resolved(p: P): void {
    this.emit(p);
  }

  unresolved(resp: RedisReply, why: string): void {
    this.ctx.emit<RedisExchange>({ protocol: 'redis', redis: { response: resp, resp: this.resp }, incomplete: why });
  }

  overflow(what: 'pending' | 'unparsed', off: number): void {
    const l = REDIS_LIMITS;
    if (what === 'pending') this.ctx.violation('redis.pending_commands', `more than ${l.maxPendingRequests} commands or ${l.maxPendingBytes} bytes awaiting replies; the oldest is reported without its reply`, off);
    else this.ctx.violation('redis.unparsed_commands', `more than ${l.maxUnparsed} stretches of unparsed client bytes; pairing stops until the connection settles`, off);
  }

  /** Every Redis command has exactly one final reply: lost server bytes held it. */
  interimMayFill(): boolean {
    return false;
  }

  // ---- ProtocolSession -------------------------------------------------------------------------

  data(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.ended) return;
    if (dir === 0) this.pairing.client(meta.offset + bytes.length, meta.peerAck);
    const parser = this.parsers[dir];
    let held: { bytes: Buffer; meta: StreamMeta } | undefined;
    if (this.lost[dir]) {
      // Resume only where a segment starts like a message of this direction; a start cut short
      // (the probe wants more) waits for the next segment, up to the probe's line limit.
      held = this.pending[dir];
      this.pending[dir] = undefined;
      const p = probeRedis(dir, held ? Buffer.concat([held.bytes, bytes]) : bytes);
      if (p === 'more' && (held?.bytes.length ?? 0) + bytes.length < MAX_HELD) {
        // Copied: the view must not outlive the packet buffer it points into.
        this.pending[dir] = held ? { bytes: Buffer.concat([held.bytes, bytes]), meta: held.meta } : { bytes: Buffer.from(bytes), meta: { ...meta } };
        return;
      }
      if (p !== 'match') {
        if (dir === 0) this.pairing.hide(held?.meta.offset ?? meta.offset, held?.meta.peerAck ?? meta.peerAck);
        return;
      }
      this.lost[dir] = false;
      parser.reset();
    }
    if (held) this.feed(dir, held.bytes, held.meta);
    this.feed(dir, bytes, meta);
  }

  private feed(dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    if (this.lost[dir]) return;
    const parser = this.parsers[dir];
    const w = this.where;
    w.time = meta.time;
    w.frame = meta.frame;
    w.offset = meta.offset;
    w.peerAck = meta.peerAck;
    parser.push(bytes, w);
    if (parser.broken !== undefined) {
      this.ctx.violation('redis.malformed', parser.broken, meta.offset);
      this.loss(dir, meta.offset, meta.peerAck, parser.idle());
    }
  }

  gap(dir: Dir, _length: number, meta: StreamMeta): void {
    if (this.ended) return;
    if (dir === 0) this.pairing.client(meta.offset + _length, meta.peerAck);
    this.pending[dir] = undefined;
    const idle = this.parsers[dir].idle() && !this.lost[dir];
    this.loss(dir, this.parsers[dir].partialOff() >= 0 ? this.parsers[dir].partialOff() : meta.offset, meta.peerAck, idle);
  }

  fin(): void {}

  end(_time: number, reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    for (const p of this.queued) this.emit(p, 'no-exec');
    this.queued = [];
    void reason;
    for (const p of this.pairing.drain()) this.emit(p, p.done ?? 'no-response');
  }

  /** Bytes of `dir` from `off` are lost or unreadable: skip to the next message start. */
  private loss(dir: Dir, off: number, ack: number, atBoundary: boolean): void {
    this.lost[dir] = true;
    this.parsers[dir].reset();
    this.pairing.noteLoss();
    if (dir === 0) this.pairing.hide(off, ack);
    else this.pairing.serverLost(atBoundary, UNPAIRED.lostInGap, off);
  }

  // ---- messages --------------------------------------------------------------------------------

  private command(m: RespMessage): void {
    const w = words(m.value);
    if (w === undefined) {
      this.ctx.violation('redis.bad_command', 'a client message that is not an array of strings', m.off);
      this.loss(0, m.off, m.peerAck, true);
      return;
    }
    const command = w[0]!.toUpperCase();
    const args = w.slice(1);
    const cmd: RedisCommand = { start: m.startTime, end: m.endTime, frames: [m.startFrame, m.endFrame], size: m.endOff - m.off, command, args, argc: (m.value.length ?? w.length) - 1 };
    const secrets = secretArgs(command, args);
    if (secrets.size > 0) cmd.secrets = [...secrets].sort((a, b) => a - b);
    const key = keyOf(command, args);
    if (key !== undefined) cmd.key = key;
    if (m.inline) cmd.inline = true;
    const p = this.pairing.create(m.off, m.peerAck, { cmd }, m.endOff - m.off);
    this.pairing.enqueue(p);
  }

  private reply(m: RespMessage): void {
    const v = m.value;
    const resp = replyOf(v, span(m));
    const raw = v.type === 'push' || v.type === 'array' ? v.items?.[0]?.str?.toLowerCase() : undefined;
    const head = this.pairing.queue.find((q) => !q.response && !q.done);
    // RESP2 has no push type: in subscribed mode messages and confirmations are plain arrays.
    // RESP3 pushes have their own type: an array there is a command's reply, subscribed or not.
    const pubsub = v.type === 'push' || (this.resp === 2 && (this.subscribed > 0 || this.confirm !== undefined)) || (raw !== undefined && head?.request.cmd.command.toLowerCase() === raw);
    const kind = pubsub ? raw : undefined;
    if (kind !== undefined && MESSAGE_KINDS.has(kind)) return this.push(v, resp, kind);
    if (kind !== undefined && SUBSCRIBE_KINDS.has(kind)) {
      const count = v.items?.[2]?.num;
      if (count !== undefined) this.subscribed = count;
      const c = this.confirm;
      if (c && c.kind === kind && c.left > 0) {
        c.left--;
        if (count === 0 && c.left === Infinity) this.confirm = undefined;
        return;
      }
      if (head?.request.cmd.command.toLowerCase() !== kind) {
        // A confirmation nobody asked for here (an UNSUBSCRIBE without channels answers once per channel).
        this.ctx.emit<RedisExchange>({ protocol: 'redis', redis: { response: { ...resp, type: 'push' }, resp: this.resp } });
        return;
      }
      const n = head.request.cmd.argc;
      this.confirm = { kind, left: n > 0 ? n - 1 : count === 0 ? 0 : Infinity };
    } else if (v.type === 'push') return this.push(v, resp, kind ?? '');
    this.view.partialOff = this.parsers[0].partialOff();
    this.view.partialAck = this.parsers[0].partialAck();
    const p = this.pairing.pick(m.off, m.peerAck, true, this.view);
    const idle = () => this.parsers[0].idle() && this.parsers[1].idle() && !this.lost[0] && !this.lost[1];
    if (!p) {
      if (this.pairing.deferring) this.pairing.defer(resp, m.endOff, resp.size);
      else this.unresolved(resp, this.pairing.orphan);
      this.pairing.settle(idle());
      return;
    }
    if (this.pairing.unique) this.pairing.reanchor(m.peerAck, !this.lost[0] && this.pairing.queue.length > 0);
    commandSecrets(p.request.cmd, v, resp);
    this.pairing.answer(p, resp, m.endOff);
    this.state(p, v, resp);
    this.pairing.settle(idle());
  }

  /** What a reply changes: RESP version, MULTI/EXEC, and whether the record waits for EXEC. */
  private state(p: P, v: RespValue, resp: RedisReply): void {
    const c = p.request.cmd.command;
    const ok = resp.type !== 'error';
    if (c === 'HELLO' && ok && p.request.cmd.args[0] !== undefined) {
      // HELLO protover switches the connection's RESP version once the server accepts it.
      const ver = Number(p.request.cmd.args[0]);
      if (ver === 2 || ver === 3) this.resp = ver;
    }
    if (this.multi > 0 && c !== 'EXEC' && c !== 'DISCARD' && c !== 'MULTI' && resp.type === 'simple' && resp.value === 'QUEUED') {
      p.request.tx = this.multi;
      p.request.queued = true;
      if (this.queued.length < MAX_QUEUED) {
        this.pairing.remove(p);
        this.queued.push(p);
        return;
      }
      this.ctx.violation('redis.multi_overflow', `more than ${MAX_QUEUED} commands queued in one MULTI; the rest are reported with their QUEUED reply`);
    }
    if (this.multi > 0 && c !== 'EXEC' && c !== 'DISCARD') p.request.tx = this.multi;
    if (c === 'MULTI' && ok) {
      this.multi = ++this.txCount;
      p.request.tx = this.multi;
    } else if ((c === 'EXEC' || c === 'DISCARD') && this.multi > 0) {
      p.request.tx = this.multi;
      const held = this.queued;
      this.queued = [];
      this.multi = 0;
      const results = c === 'EXEC' && v.type === 'array' ? v.items : undefined;
      // EXEC answered nil (a WATCHed key changed) or EXECABORT: none of the queued commands ran.
      const aborted = c === 'EXEC' && (v.type === 'nil' || v.type === 'error');
      for (let i = 0; i < held.length; i++) {
        const h = held[i]!;
        const el = results?.[i];
        // Each queued command's answer is its element of EXEC's reply (its bytes counted in EXEC's record).
        if (el !== undefined) {
          h.response = replyOf(el, { start: resp.start, end: resp.end, frames: resp.frames, size: 0 });
          commandSecrets(h.request.cmd, el, h.response);
        }
        this.emit(h, aborted ? 'exec-aborted' : el === undefined && results && i >= MAX_ITEMS ? 'reply-not-kept' : undefined);
      }
    }
    this.emit(p);
  }

  private push(v: RespValue, resp: RedisReply, kind: string): void {
    const it = v.items ?? [];
    const out: RedisReply = { ...resp, type: 'push' };
    // A message's channel and payload say it all; other pushes (client tracking's "invalidate") keep the value.
    if (MESSAGE_KINDS.has(kind)) delete out.value;
    if (kind === 'pmessage') {
      out.pattern = it[1]?.str;
      out.channel = it[2]?.str;
      out.message = it[3] ? preview(it[3], VALUE_PREVIEW) : undefined;
    } else if (MESSAGE_KINDS.has(kind)) {
      out.channel = it[1]?.str;
      out.message = it[2] ? preview(it[2], VALUE_PREVIEW) : undefined;
    }
    for (const k of ['pattern', 'channel', 'message'] as const) if (out[k] === undefined) delete out[k];
    this.ctx.emit<RedisExchange>({ protocol: 'redis', redis: { response: out, resp: this.resp } });
  }

  private emit(p: P, reason?: string): void {
    if (p.request.emitted) return;
    p.request.emitted = true;
    this.pairing.remove(p);
    const tx: RedisTransaction = { request: p.request.cmd, resp: this.resp };
    if (p.response) tx.response = p.response;
    if (p.request.tx !== undefined) tx.transaction = p.request.tx;
    if (p.request.queued) tx.queued = true;
    const ex: RedisExchange = { protocol: 'redis', redis: tx };
    const why = reason ?? (p.response ? undefined : 'no-response');
    if (why) ex.incomplete = why;
    this.ctx.emit(ex);
  }
}
