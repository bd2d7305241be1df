import type { ParserInfo } from 'http-parser-js';
import type { HttpRequestHalf, HttpResponseHalf, MessageHalf } from '../types.js';
import type { Pending } from '../pairing.js';
import type { RequestLineExtra } from './parser.js';

/** Where a message started: copied out of the StreamMeta of the packet that carried its first byte. */
export interface Mark {
  off: number;
  time: number;
  frame: number;
  peerAck: number;
}

/** Earliest and latest capture time and frame of the packets that carried a message's bytes. */
export interface Span {
  minT: number;
  maxT: number;
  minF: number;
  maxF: number;
}

/** A request awaiting its response, as the pairing holds it. */
export type Req = Pending<Msg, Msg>;

/** One HTTP/1 message (request or response) as it is read. */
export interface Msg {
  start: Mark;
  span?: Span;
  /** Request line as sent, when it was not RFC-conformant or its version unusual. */
  line?: RequestLineExtra;
  endOff: number;
  endTime: number;
  endFrame: number;
  info: ParserInfo;
  headers: Record<string, string>;
  trailers?: Record<string, string>;
  bodySize: number;
  body: Buffer[];
  captured: number;
  truncated: boolean;
  gap: boolean;
  complete: boolean;
  /** Set when the message was cut off by malformed input or a gap in its headers. */
  broken?: string;
  /** A request's place in the pairing queue (set once it is queued). */
  req?: Req;
  /** A request's 1xx interim responses (RFC 9110 §15.2), before its final one. */
  interim?: { status: number; time: number; frame: number }[];
}

export function newMessage(start: Mark, info: ParserInfo, headers: Record<string, string>): Msg {
  return {
    start, endOff: 0, endTime: 0, endFrame: 0, info, headers,
    bodySize: 0, body: [], captured: 0, truncated: false, gap: false, complete: false,
  };
}

/** A final response ends its request's exchange; 1xx interim responses do not (RFC 9110 §15.2). */
export function isFinal(status: number | undefined): boolean {
  return status !== undefined && (status >= 200 || status === 101);
}

/** What a request's start line and header fields hold in memory, roughly (counted by the pairing). */
export function headerBytes(info: ParserInfo): number {
  let n = 64 + (info.url?.length ?? 0);
  for (const h of info.headers) n += h.length;
  return n;
}

/** Lower-case forms of header names seen: the same few dozen names recur on every message. */
const LOWER = new Map<string, string>();

/** Header list → object with lower-case names; repeated fields joined with ", " (RFC 9110 §5.3). */
export function headerObject(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = list[i]!;
    let k = LOWER.get(name);
    if (k === undefined) {
      k = name.toLowerCase();
      if (LOWER.size < 1024) LOWER.set(name, k);
    }
    const v = list[i + 1]!;
    const prev = out[k];
    // Set-Cookie cannot be joined with commas (RFC 9110 §5.3); keep one cookie per line.
    out[k] = prev === undefined ? v : `${prev}${k === 'set-cookie' ? '\n' : ', '}${v}`;
  }
  return out;
}

/** Fills the fields every message half shares (no intermediate objects: this runs per message). */
function fill<T extends MessageHalf>(out: T, m: Msg): T {
  const sp = m.span;
  out.start = sp ? Math.min(sp.minT, m.start.time) : m.start.time;
  out.end = sp ? Math.max(sp.maxT, m.endTime) : m.endTime || m.start.time;
  out.frames = sp ? [Math.min(sp.minF, m.start.frame), Math.max(sp.maxF, m.endFrame)] : [m.start.frame, m.endFrame || m.start.frame];
  out.size = Math.max(0, m.endOff - m.start.off);
  out.headers = m.headers;
  if (m.trailers) out.trailers = m.trailers;
  out.bodySize = m.bodySize;
  if (m.captured > 0) out.body = m.body.length === 1 ? m.body[0]! : Buffer.concat(m.body);
  if (m.truncated) out.bodyTruncated = true;
  if (m.gap) out.gap = true;
  return out;
}

export function requestHalf(m: Msg): HttpRequestHalf {
  const i = m.info;
  const version = m.line ? m.line.version : `${i.versionMajor}.${i.versionMinor}`;
  return fill({ method: i.method ?? '', path: i.url ?? '', version } as HttpRequestHalf, m);
}

export function responseHalf(m: Msg): HttpResponseHalf {
  const i = m.info;
  return fill({ status: i.statusCode ?? 0, reason: i.statusMessage ?? '', version: `${i.versionMajor}.${i.versionMinor}` } as HttpResponseHalf, m);
}
