/**
 * Redis comparison between tshark's RESP dissector and tapwire's redis records, per TCP connection
 * and direction. tshark is run on the capture (`-T pdml`, which keeps the order of the messages in a
 * packet; the shared oracle's `redis` rows flatten them). Items compared, aligned in order (LCS):
 *
 *   command  every message the client sent: its first word upper-case and its arguments, each cut
 *            as tapwire cuts them (512 bytes, 63 arguments) (tapwire: request.command and args)
 *   reply    every message the server sent: its type and value: `nil`, `simple:OK`, `error:ERR …`,
 *            `integer:1`, `bulk:<first 200 characters>`, `array:<length>` (tapwire: response.type
 *            and value, length or error; a command queued in MULTI answered `simple:QUEUED` on the
 *            wire, its record carrying its element of EXEC's reply instead)
 *
 * tshark 4.0's RESP dissector does not reassemble a message across TCP segments: a message it could
 * not finish is marked (expert info "reassembled_in_next_frame", or cut short) and a segment that
 * starts inside a message is read as if a message began there. Such items are kept with `partial`
 * and `inside` flags, so the rules in redis.test.ts can name them.
 */
import { execFileSync } from 'node:child_process';
import type { FlowRecord, RedisFlow } from '../../src/flows/record.js';
import { connKey } from './http1-compare.js';

export type RedisItemKind = 'command' | 'reply';

/** One message tshark decoded. */
export interface TsharkResp {
  frame: number;
  conn: string;
  fromServer: boolean;
  item: string;
  /** tshark said it could not finish it in this frame, or it has fewer elements than its length. */
  partial: boolean;
  /** Its first word, lower-case, when it is an array starting with a string. */
  head?: string;
}

export interface RedisDeviation {
  kind: RedisItemKind;
  /** missing: tshark has it, tapwire not; extra: the reverse. */
  side: 'missing' | 'extra';
  what: string;
  conn: string;
  /** The frame tshark decoded it in (missing), or tapwire's first and last frame (extra). */
  frames: [number, number];
  /** missing: tshark marked it partial. */
  partial?: boolean;
  /** missing: tshark's first word of it. */
  head?: string;
  /** missing: its frame is inside a message tapwire reassembled from several segments (not its first). */
  midMessage?: boolean;
  /** missing reply: the connection had switched to RESP3 (HELLO 3) before it. */
  resp3?: boolean;
  /** extra: the tapwire record it came from. */
  record?: RedisFlow;
  /** extra: tshark marked a message partial in one of its frames. */
  tsharkPartial?: boolean;
}

/** tapwire's cuts (src/protocols/redis/session.ts ARG_KEEP, resp.ts MAX_ITEMS). */
const ARG_KEEP = 512;
const MAX_ARGS = 63;
const BULK_CHARS = 200;

interface Node {
  name: string;
  show: string;
  children: Node[];
}

const attr = (line: string, a: string): string => {
  const m = new RegExp(`\\s${a}="([^"]*)"`).exec(line);
  return m ? m[1]!.replace(/&#x([0-9a-f]+);/gi, (_x, h: string) => String.fromCodePoint(parseInt(h, 16))).replace(/&#(\d+);/g, (_x, d: string) => String.fromCodePoint(Number(d))).replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&amp;/g, '&') : '';
};

/** tshark's RESP messages of a capture, in packet order (`serverPorts`: the Redis servers' TCP ports). */
export function tsharkResp(file: string, serverPorts: readonly number[]): TsharkResp[] {
  const decode = serverPorts.flatMap((p) => ['-d', `tcp.port==${p},resp`]);
  const xml = execFileSync('tshark', ['-n', '-2', '-o', 'tcp.reassemble_out_of_order:TRUE', ...decode, '-r', file, '-T', 'pdml'],
    { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  const out: TsharkResp[] = [];
  let frame = 0, src = '', dst = '', sport = 0, dport = 0;
  let stack: Node[] | undefined;
  let tops: Node[] = [];
  const flush = () => {
    const conn = connKey({ ip: src, port: sport }, { ip: dst, port: dport });
    const fromServer = serverPorts.includes(sport);
    for (const n of tops) {
      const v = convert(n, fromServer);
      if (v) out.push({ frame, conn, fromServer, ...v });
    }
    tops = [];
  };
  for (const raw of xml.split('\n')) {
    const line = raw.trim();
    if (line === '<packet>') { frame = 0; tops = []; continue; }
    if (line === '</packet>') { flush(); continue; }
    if (stack) {
      if (line.startsWith('</proto>')) { stack = undefined; continue; }
      if (line.startsWith('</field>')) { stack.pop(); continue; }
      if (!line.startsWith('<field')) continue;
      const n: Node = { name: attr(line, 'name'), show: attr(line, 'show'), children: [] };
      (stack.length ? stack[stack.length - 1]!.children : tops).push(n);
      if (!line.endsWith('/>')) stack.push(n);
      continue;
    }
    if (line.startsWith('<proto name="resp"')) { stack = []; continue; }
    if (!line.startsWith('<field')) continue;
    const name = attr(line, 'name');
    if (name === 'frame.number') frame = Number(attr(line, 'show'));
    else if (name === 'ip.src' || name === 'ipv6.src') src = attr(line, 'show');
    else if (name === 'ip.dst' || name === 'ipv6.dst') dst = attr(line, 'show');
    else if (name === 'tcp.srcport') sport = Number(attr(line, 'show'));
    else if (name === 'tcp.dstport') dport = Number(attr(line, 'show'));
  }
  return out;
}

/** Any expert info that says the message was not finished here. */
function partialIn(n: Node): boolean {
  return /^resp\.(reassembled_in_next_frame|partial|malformed_length|array_recursion_too_deep)$/.test(n.name) || n.children.some(partialIn);
}

const hexText = (show: string): Buffer => Buffer.from(show.replace(/:/g, ''), 'hex');

/** A top-level RESP node as a compared item. */
function convert(n: Node, fromServer: boolean): { item: string; partial: boolean; head?: string } | undefined {
  const partial = partialIn(n);
  const kids = n.children.filter((c) => !c.name.startsWith('_ws.'));
  if (n.name === 'resp.array') {
    const len = Number(kids.find((c) => c.name === 'resp.array.length')?.show ?? NaN);
    const els = kids.filter((c) => c.name !== 'resp.array.length');
    const words = els.map((e) => (e.name === 'resp.bulk_string' ? bulkText(e) : e.name === 'resp.string' ? e.show : undefined));
    const first = els[0];
    const head = (first?.name === 'resp.integer' ? first.show : words[0])?.toLowerCase();
    const cut = partial || els.length < len;
    if (len === -1) return { item: 'nil', partial: cut };
    if (!fromServer) {
      if (words.some((w) => w === undefined) || words.length === 0) return { item: `array:${len}`, partial: cut, head };
      return { item: commandItem(words[0]!.toUpperCase(), words.slice(1) as string[]), partial: cut, head };
    }
    return { item: arrayItem(len, head), partial: cut, head };
  }
  if (n.name === 'resp.bulk_string') {
    const len = Number(kids.find((c) => c.name === 'resp.bulk_string.length')?.show ?? NaN);
    if (len === -1) return { item: 'nil', partial };
    return { item: `bulk:${bulkText(n) ?? ''}`.slice(0, 5 + BULK_CHARS), partial };
  }
  if (n.name === 'resp.string') return { item: `simple:${n.show}`, partial };
  if (n.name === 'resp.error') return { item: `error:${n.show}`, partial };
  if (n.name === 'resp.integer') return { item: `integer:${n.show}`, partial };
  return undefined;
}

function bulkText(n: Node): string | undefined {
  const v = n.children.find((c) => c.name === 'resp.bulk_string.value');
  if (!v) return n.children.some((c) => c.name === 'resp.bulk_string.length' && c.show === '0') ? '' : undefined;
  return hexText(v.show).subarray(0, ARG_KEEP).toString('utf8');
}

/** An array reply: its length and first string, lower-case (tells a pub/sub confirmation from a message). */
const arrayItem = (len: number | string, head: string | undefined) => `array:${len}${head !== undefined ? ` ${head.slice(0, 40)}` : ''}`;

/** The first string of tapwire's aggregate preview (`["subscribe", "orders", "1"]`), lower-case. */
function previewHead(value: string | undefined): string | undefined {
  const m = /^\["((?:[^"\\]|\\.)*)"/.exec(value ?? '');
  return m ? (JSON.parse(`"${m[1]!}"`) as string).toLowerCase() : undefined;
}

export function commandItem(command: string, args: readonly string[]): string {
  return [command, ...args.slice(0, MAX_ARGS).map((a) => a.slice(0, ARG_KEEP))].join(' ');
}

/** A tapwire reply as the item tshark would show for the wire's message. */
export function replyItem(r: RedisFlow): string | undefined {
  const s = r.response;
  if (!s) return undefined;
  if (r.redis?.queued) return 'simple:QUEUED';
  switch (s.type) {
    case 'nil': return 'nil';
    case 'error': return `error:${s.error ?? ''}`;
    case 'simple': case 'integer': return `${s.type}:${s.value ?? ''}`;
    case 'bulk': return `bulk:${(s.value ?? '').slice(0, BULK_CHARS)}`;
    case 'array': return arrayItem(s.length ?? '?', previewHead(s.value));
    // A pub/sub message (RESP2: an array): "message" channel payload, or "pmessage" pattern channel payload.
    case 'push': return arrayItem(s.length ?? '?', s.channel === undefined ? previewHead(s.value) : s.pattern !== undefined ? 'pmessage' : 'message');
    default: return `${s.type}:${s.value ?? s.length ?? ''}`;
  }
}

interface Side {
  items: string[];
  frames: [number, number][];
  meta: (TsharkResp | RedisFlow)[];
}

const side = (): Side => ({ items: [], frames: [], meta: [] });

/** Compares tshark's and tapwire's items per connection: counts per kind and every deviation. */
export function compareRedis(tshark: readonly TsharkResp[], records: readonly FlowRecord[]): {
  items: number; matched: number; byKind: Record<RedisItemKind, [number, number]>; deviations: RedisDeviation[]; connections: number;
} {
  const o = new Map<string, Record<RedisItemKind, Side>>();
  const w = new Map<string, Record<RedisItemKind, Side>>();
  const get = (m: typeof o, c: string) => m.get(c) ?? m.set(c, { command: side(), reply: side() }).get(c)!;
  for (const t of tshark) {
    const s = get(o, t.conn)[t.fromServer ? 'reply' : 'command'];
    s.items.push(t.item);
    s.frames.push([t.frame, t.frame]);
    s.meta.push(t);
  }
  const redis = records.filter((r): r is RedisFlow => r.protocol === 'redis');
  // Commands in the order they were sent; replies in the order they came (queued commands: their QUEUED).
  const byReq = [...redis].filter((r) => r.request).sort((a, b) => a.request!.frames![0] - b.request!.frames![0]);
  for (const r of byReq) {
    const s = get(w, connKey(r.src, r.dst)).command;
    s.items.push(commandItem(r.request!.command, r.request!.args));
    s.frames.push(r.request!.frames!);
    s.meta.push(r);
  }
  const byResp = [...redis].filter((r) => r.response && (r.response.size > 0 || r.redis?.queued))
    .sort((a, b) => (a.redis?.queued ? a.request!.frames![1] : a.response!.frames![0]) - (b.redis?.queued ? b.request!.frames![1] : b.response!.frames![0]));
  for (const r of byResp) {
    const s = get(w, connKey(r.src, r.dst)).reply;
    s.items.push(replyItem(r)!);
    s.frames.push(r.response!.frames!);
    s.meta.push(r);
  }
  const byKind: Record<RedisItemKind, [number, number]> = { command: [0, 0], reply: [0, 0] };
  const deviations: RedisDeviation[] = [];
  const conns = [...new Set([...o.keys(), ...w.keys()])];
  for (const conn of conns) {
    for (const kind of ['command', 'reply'] as const) {
      const a = o.get(conn)?.[kind] ?? side(), b = w.get(conn)?.[kind] ?? side();
      const r = alignIdx(a.items, b.items);
      byKind[kind][0] += a.items.length;
      byKind[kind][1] += r.matched;
      const hello3 = Math.min(...(w.get(conn)?.reply.meta ?? []).filter((x) => (x as RedisFlow).redis?.resp === 3).map((x) => (x as RedisFlow).response!.frames![0]));
      for (const i of r.missing) {
        const t = a.meta[i] as TsharkResp;
        const midMessage = b.frames.some(([f0, f1]) => f0 < t.frame && t.frame <= f1);
        deviations.push({ kind, side: 'missing', what: a.items[i]!, conn, frames: a.frames[i]!, partial: t.partial, head: t.head, midMessage, resp3: t.frame >= hello3 });
      }
      for (const j of r.extra) {
        const [f0, f1] = b.frames[j]!;
        const tsharkPartial = (a.meta as TsharkResp[]).some((t) => t.partial && f0 <= t.frame && t.frame <= f1);
        deviations.push({ kind, side: 'extra', what: b.items[j]!, conn, frames: [f0, f1], record: b.meta[j] as RedisFlow, tsharkPartial });
      }
    }
  }
  const items = byKind.command[0] + byKind.reply[0];
  return { items, matched: byKind.command[1] + byKind.reply[1], byKind, deviations, connections: conns.length };
}

/** Longest common subsequence of `a` and `b` (as align() in postgres-compare.ts), by position: the unpaired ones. */
export function alignIdx(a: readonly string[], b: readonly string[]): { matched: number; missing: number[]; extra: number[] } {
  const n = a.length, m = b.length;
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i]![j] = a[i] === b[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const missing: number[] = [], extra: number[] = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { i++; j++; } else if (L[i + 1]![j]! >= L[i]![j + 1]!) missing.push(i++); else extra.push(j++);
  }
  while (i < n) missing.push(i++);
  while (j < m) extra.push(j++);
  return { matched: L[0]![0]!, missing, extra };
}
