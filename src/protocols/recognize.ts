import type { Dir } from '../stream/index.js';

/**
 * Names the protocol of traffic tapwire does not decode, from its first bytes, so a capture of
 * TLS, MySQL or Kafka is reported as "not decoded (tls)" rather than as nothing at all. Only
 * cheap, reliable signatures are used: a fixed magic ("SSH-", "AMQP"), or a header whose every
 * field must be in range and agree with the others (a TLS record carrying a ClientHello, a MySQL
 * HandshakeV10, a DNS question that parses). When in doubt the answer is undefined ("unknown"):
 * a wrong name would mislead more than none.
 */
export interface Recognized {
  /** tls, ssh, mysql, redis, kafka, amqp, dns (TCP); dns, quic (UDP). */
  kind: string;
  /** Which direction's sender is the server, when the bytes say so (a greeting, a ClientHello). */
  serverDir?: Dir;
}

/**
 * A TCP connection nobody decoded. `first[d]`: the first bytes direction d sent (from the start
 * of what was captured, up to its first gap; possibly empty). `speaker`: the direction that sent
 * payload first.
 */
export function recognizeTcp(first: readonly [Buffer, Buffer], speaker?: Dir): Recognized | undefined {
  for (const test of TCP_TESTS) {
    const r = test(first, speaker);
    if (r) return r;
  }
  return undefined;
}

/** A UDP datagram's payload: DNS (any port) or a QUIC long-header packet. */
export function recognizeUdp(payload: Buffer): Recognized | undefined {
  const dns = dnsMessage(payload);
  if (dns) return { kind: 'dns', serverDir: dns.response ? 0 : 1 };
  if (quicLongHeader(payload)) return { kind: 'quic' };
  return undefined;
}

type TcpTest = (first: readonly [Buffer, Buffer], speaker?: Dir) => Recognized | undefined;

const other = (d: Dir): Dir => (1 - d) as Dir;
const DIRS: readonly Dir[] = [0, 1];

/**
 * A TLS record header: content type 20–23, version 3.0–3.4, a length a record may have. A
 * handshake record names its first message's type when that message's version starts with 3
 * (ClientHello and ServerHello carry legacy_version 3.x right after their 4-byte header).
 */
function tlsRecord(b: Buffer): { type: number; handshake?: number } | undefined {
  if (b.length < 5) return undefined;
  const type = b[0]!;
  if (type < 20 || type > 23 || b[1] !== 3 || b[2]! > 4) return undefined;
  const len = b.readUInt16BE(3);
  if (len === 0 || len > 16384 + 2048) return undefined;
  if (type !== 22 || b.length < 11 || b[9] !== 3 || b[10]! > 4) return { type };
  return { type, handshake: b[5] };
}

const tls: TcpTest = (first) => {
  const recs = first.map(tlsRecord);
  for (const d of DIRS) {
    const r = recs[d];
    if (r?.handshake === 1) return { kind: 'tls', serverDir: other(d) }; // ClientHello
    if (r?.handshake === 2) return { kind: 'tls', serverDir: d }; // ServerHello
  }
  // Caught after the handshake: both directions start with record headers.
  return recs[0] && recs[1] ? { kind: 'tls' } : undefined;
};

/** RFC 4253 §4.2: "SSH-protoversion-softwareversion"; both sides send it. */
const ssh: TcpTest = (first) => (first.some((b) => /^SSH-[12]\.\d+-[\x21-\x7e]/.test(ascii(b, 16))) ? { kind: 'ssh' } : undefined);

/** AMQP's protocol header, "AMQP" then 0–3 (0-9-1 sends 0 0 9 1; 1.0 sends 0|2|3 1 0 0), from the client. */
const amqp: TcpTest = (first) => {
  for (const d of DIRS) {
    const b = first[d];
    if (b.length >= 8 && ascii(b, 4) === 'AMQP' && b[4]! <= 3) return { kind: 'amqp', serverDir: other(d) };
  }
  return undefined;
};

/**
 * MySQL: the server speaks first with HandshakeV10 — a 3-byte length, sequence 0, protocol
 * version 10, then a NUL-terminated server version that starts with a digit ("8.0.36"). The mysql
 * analyzer decodes a connection from that greeting on (src/protocols/mysql/probe.ts), so what
 * reaches here is mostly a connection caught mid-way: a COM_QUERY (sequence 0, command 3, SQL
 * text) answered by a packet with sequence 1, which has no greeting to probe.
 */
const mysql: TcpTest = (first) => {
  for (const d of DIRS) {
    const b = first[d];
    if (b.length < 8 || b[3] !== 0) continue;
    const len = b.readUIntLE(0, 3);
    if (b[4] === 10 && len >= 20 && len <= 1024) {
      const nul = b.indexOf(0, 5);
      if (nul > 5 && nul < Math.min(5 + 64, 4 + len) && /^\d[\x20-\x7e]*$/.test(ascii(b.subarray(5, nul)))) return { kind: 'mysql', serverDir: d };
    }
    const reply = first[other(d)];
    if (b[4] === 3 && len >= 4 && len <= b.length - 4 && /^[\s\x20-\x7e]+$/.test(ascii(b.subarray(5, Math.min(4 + len, 69))))
      && reply.length >= 5 && reply[3] === 1 && reply.readUIntLE(0, 3) >= 1) {
      return { kind: 'mysql', serverDir: other(d) };
    }
  }
  return undefined;
};

/** Commands a Redis client is likely to send first, for inline (non-RESP) requests. */
const REDIS_COMMANDS = new Set([
  'PING', 'AUTH', 'HELLO', 'SELECT', 'GET', 'SET', 'SETEX', 'MGET', 'MSET', 'DEL', 'EXISTS', 'EXPIRE', 'TTL', 'INCR', 'DECR', 'KEYS', 'SCAN',
  'HGET', 'HSET', 'HGETALL', 'LPUSH', 'RPUSH', 'LPOP', 'RPOP', 'LRANGE', 'SADD', 'SMEMBERS', 'ZADD', 'ZRANGE', 'PUBLISH', 'SUBSCRIBE',
  'PSUBSCRIBE', 'INFO', 'CLIENT', 'CONFIG', 'FLUSHALL', 'FLUSHDB', 'MULTI', 'EXEC', 'EVAL', 'EVALSHA', 'XADD', 'XREAD', 'QUIT',
]);

/**
 * Redis: a RESP array of bulk strings from the client (`*2\r\n$3\r\nGET\r\n…`); or, when the
 * client spoke first, an inline command it is known by (`PING\r\n`) answered by a RESP reply.
 */
const redis: TcpTest = (first, speaker) => {
  for (const d of DIRS) {
    if (/^\*[1-9]\d{0,6}\r\n\$\d{1,10}\r\n/.test(ascii(first[d], 24))) return { kind: 'redis', serverDir: other(d) };
  }
  if (speaker === undefined) return undefined;
  const line = /^([A-Za-z]+)[ \r]/.exec(ascii(first[speaker], 24));
  const reply = ascii(first[other(speaker)], 64);
  if (line && REDIS_COMMANDS.has(line[1]!.toUpperCase()) && /^(?:[+\-:][^\r\n]*|[$*](?:-1|\d{1,10}))\r\n/.test(reply)) {
    return { kind: 'redis', serverDir: other(speaker) };
  }
  return undefined;
};

/**
 * Kafka: a request header — int32 size, api key (0–100), api version (0–30), correlation id,
 * client id (int16 length, -1 for none, then printable text) — answered by a response that
 * starts with the same correlation id; or, with no answer captured, exactly one whole request.
 */
const kafka: TcpTest = (first) => {
  for (const d of DIRS) {
    const b = first[d];
    if (b.length < 14) continue;
    const size = b.readInt32BE(0);
    const key = b.readInt16BE(4), version = b.readInt16BE(6), corr = b.readInt32BE(8), idLen = b.readInt16BE(12);
    if (size < 10 || size > 1 << 24 || key < 0 || key > 100 || version < 0 || version > 30 || corr < 0 || idLen < -1 || 10 + Math.max(idLen, 0) > size) continue;
    if (idLen > 0 && !/^[\x20-\x7e]+$/.test(ascii(b.subarray(14, 14 + idLen)))) continue;
    const reply = first[other(d)];
    if (reply.length >= 8 ? reply.readInt32BE(4) === corr && reply.readInt32BE(0) >= 4 : reply.length === 0 && b.length === size + 4) {
      return { kind: 'kafka', serverDir: other(d) };
    }
  }
  return undefined;
};

/** DNS over TCP (RFC 1035 §4.2.2): a 2-byte length, then a message whose question parses. */
const dnsTcp: TcpTest = (first) => {
  for (const d of DIRS) {
    const b = first[d];
    if (b.length < 2) continue;
    const len = b.readUInt16BE(0);
    const m = len >= 17 ? dnsMessage(b.subarray(2, 2 + len)) : undefined;
    if (m) return { kind: 'dns', serverDir: m.response ? d : other(d) };
  }
  return undefined;
};

/** Most telling first: magic strings, then checked headers. */
const TCP_TESTS: readonly TcpTest[] = [tls, ssh, amqp, mysql, redis, kafka, dnsTcp];

/**
 * A DNS message whose header is plausible (opcode 0–5, 1–4 questions, few records) and whose first
 * question parses: uncompressed labels of at most 63 bytes, a name of at most 255, then a type and
 * a known class (IN, CH, HS, NONE, ANY; or mDNS's IN with the unicast bit).
 */
function dnsMessage(m: Buffer): { response: boolean } | undefined {
  if (m.length < 17) return undefined;
  const flags = m.readUInt16BE(2);
  const qd = m.readUInt16BE(4), an = m.readUInt16BE(6), ns = m.readUInt16BE(8), ar = m.readUInt16BE(10);
  if (((flags >> 11) & 15) > 5 || qd < 1 || qd > 4 || an > 256 || ns > 64 || ar > 64) return undefined;
  let p = 12;
  for (let name = 0; ;) {
    const l = m[p];
    if (l === undefined || (l & 0xc0) !== 0) return undefined;
    p++;
    if (l === 0) break;
    name += l + 1;
    if (name > 255 || p + l > m.length) return undefined;
    p += l;
  }
  if (p + 4 > m.length) return undefined;
  const cls = m.readUInt16BE(p + 2) & 0x7fff;
  if (![1, 3, 4, 254, 255].includes(cls)) return undefined;
  return { response: (flags & 0x8000) !== 0 };
}

/** QUIC long header (RFC 9000 §17.2): form and fixed bits set, a known version, a connection id of at most 20 bytes. */
function quicLongHeader(b: Buffer): boolean {
  if (b.length < 7 || (b[0]! & 0xc0) !== 0xc0) return false;
  const version = b.readUInt32BE(1);
  return (version === 1 || version === 0x6b3343cf || (version >= 0xff00001d && version <= 0xff000020)) && b[5]! <= 20;
}

function ascii(b: Buffer, max = b.length): string {
  return b.toString('latin1', 0, Math.min(max, b.length));
}
