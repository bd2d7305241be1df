/**
 * HTTP/2 and gRPC streams as tshark sees them (oracle `h2`, `h2hdr`, `grpc` rows) and as tapwire
 * emits them (flow records with protocol "http2" / "grpc"), and the field-by-field comparison of
 * the two. Pure functions apart from frameSources(); http2.test.ts runs them per capture.
 *
 * The oracle rows carry no direction, so each row's direction is that of its frame's packet
 * (frameSources: the capture read with tapwire's own reader and packet decoder, which the TCP
 * suite checks against tshark). The client of a connection is, in tshark's view, the sender of
 * the HEADERS that carry `:method` (never a PUSH_PROMISE: the server sends those).
 *
 * Header blocks: an `h2hdr` row belongs to the nearest preceding `h2` row of the same frame of
 * type HEADERS (1), PUSH_PROMISE (5) or CONTINUATION (9); a CONTINUATION's fields join the block
 * its HEADERS opened. On a stream, the first block a side sends is its header section, later ones
 * are trailers; a response block with a 1xx :status is interim. A PUSH_PROMISE's block is the
 * request of the promised stream, which the oracle does not name: promised ids are allocated in
 * increasing order (RFC 9113 §5.1.1), so the k-th PUSH_PROMISE of a connection is taken to
 * promise the k-th even stream id that shows up in its `h2` rows.
 *
 * gRPC rows carry no stream id: a `grpc` row belongs to the stream of the DATA rows sent in the
 * same frame in the same direction (tshark emits the message in the frame whose DATA completed
 * it); a frame with DATA of several streams in one direction would be ambiguous and is refused.
 */
import { readCapture } from '../../src/capture/reader.js';
import { Violations } from '../../src/common/violations.js';
import { Decoder, formatIp, IPPROTO_TCP } from '../../src/decode/packet.js';
import type { FlowRecord, GrpcFlow, Http2Flow, RecordMessage } from '../../src/flows/record.js';
import { connKey, normIp } from './http1-compare.js';
import type { GrpcRow, H2FrameRow, Oracle } from './oracle.js';

export const H2_TYPE = {
  DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const END_STREAM = 0x01;
const END_HEADERS = 0x04;
const PADDED = 0x08;

export type Field = [name: string, value: string];
export type Side = 'client' | 'server';

/** Endpoint spelling shared by frameSources() and records: `ip/port`, IPv6 fully expanded. */
export function endpoint(ip: string, port: number): string {
  return `${normIp(ip)}/${port}`;
}

/** Source endpoint of every TCP frame of a capture, by 1-based frame number. */
export async function frameSources(file: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const decoder = new Decoder(new Violations());
  await readCapture(file, (p) => {
    const d = decoder.decode(p);
    if (d && d.proto === IPPROTO_TCP) out.set(d.frame, endpoint(formatIp(d.src), d.srcPort));
  }, { violations: new Violations() });
  return out;
}

// ---- tshark's view --------------------------------------------------------------------------

export interface OracleHalf {
  /** Header section: fields in order, pseudo-headers included. */
  fields: Field[];
  /** Frame of the HEADERS (or PUSH_PROMISE) that opened the section. */
  frame: number;
  /** Trailer section(s), fields in order. */
  trailers?: Field[];
  /** From a PUSH_PROMISE (request of a pushed stream). */
  pushed?: boolean;
  /** A header block whose END_HEADERS tshark never showed (its fields are what tshark decoded). */
  unfinished?: boolean;
}

export interface OracleStream {
  /** Connection key (connKey) and tcp.stream. */
  conn: string;
  tcpStream: number;
  id: number;
  request?: OracleHalf;
  response?: OracleHalf;
  /** Interim (1xx) :status values, in order. */
  interim: number[];
  /** gRPC messages tshark decoded, per direction. */
  grpc: { client: { size: number; compressed: boolean }[]; server: { size: number; compressed: boolean }[] };
  /** Sum of DATA payload lengths per direction, and whether a PADDED frame makes it an upper bound. */
  data: { client: number; server: number; clientPadded: boolean; serverPadded: boolean; clientFrames: number; serverFrames: number };
  /** END_STREAM seen per direction. */
  ended: { client: boolean; server: boolean };
  /** RST_STREAM frames on the stream: who sent them, in which frame. */
  rst: { by: Side; frame: number }[];
  /** Frames (packets) in which tshark showed a frame of this stream. */
  frames: number[];
}

export interface OracleConn {
  conn: string;
  tcpStream: number;
  /** tshark's client endpoint (sender of :method HEADERS), when it can be told. */
  client?: string;
  streams: OracleStream[];
  /** Connection-level frames tshark showed, by type. */
  connFrames: Map<number, number>;
}

interface Block {
  sender: string;
  stream: number;
  type: number;
  frame: number;
  fields: Field[];
  done: boolean;
}

/** tshark's HTTP/2 streams per connection, from the oracle rows and the frames' source endpoints. */
export function oracleH2(o: Oracle, sources: ReadonlyMap<number, string>): OracleConn[] {
  const connOf = new Map<number, string>();
  const ends = new Map<number, [string, string]>();
  for (const s of o.tcpStreams) {
    connOf.set(s.stream, connKey(s.node0, s.node1));
    ends.set(s.stream, [endpoint(s.node0.ip, s.node0.port), endpoint(s.node1.ip, s.node1.port)]);
  }
  const sender = (r: { frame: number; stream: number }): string => {
    const src = sources.get(r.frame);
    if (src === undefined) throw new Error(`${o.file}: frame ${r.frame} is not a TCP packet tapwire decoded`);
    const e = ends.get(r.stream);
    if (!e) throw new Error(`${o.file}: HTTP/2 row on tcp.stream ${r.stream}, which has no tcp_stream row`);
    if (src !== e[0] && src !== e[1]) throw new Error(`${o.file}: frame ${r.frame} (${src}) is not from tcp.stream ${r.stream}`);
    return src;
  };

  // Pass 1: header blocks, frames, gRPC messages, per tcp.stream, in row order.
  interface Acc {
    blocks: Block[];
    open: Map<string, Block>; // per sender: a HEADERS/PUSH_PROMISE block without END_HEADERS yet
    frames: { row: H2FrameRow; sender: string }[];
    grpc: { row: GrpcRow; sender: string; stream: number }[];
  }
  const acc = new Map<number, Acc>();
  const get = (s: number): Acc => {
    let a = acc.get(s);
    if (!a) acc.set(s, (a = { blocks: [], open: new Map(), frames: [], grpc: [] }));
    return a;
  };
  /** The block the next h2hdr rows of a tcp.stream belong to (reset by any other h2 row). */
  const current = new Map<number, Block | undefined>();
  for (const r of o.h2Rows) {
    if (r.udpStream !== undefined) continue;
    const a = get(r.stream);
    const from = sender(r);
    if (r.kind === 'h2') {
      a.frames.push({ row: r, sender: from });
      let blk: Block | undefined;
      if (r.type === H2_TYPE.HEADERS || r.type === H2_TYPE.PUSH_PROMISE) {
        blk = { sender: from, stream: r.h2Stream, type: r.type, frame: r.frame, fields: [], done: (r.flags & END_HEADERS) !== 0 };
        a.blocks.push(blk);
        if (blk.done) a.open.delete(from);
        else a.open.set(from, blk);
      } else if (r.type === H2_TYPE.CONTINUATION) {
        blk = a.open.get(from);
        if (blk && blk.stream !== r.h2Stream) blk = undefined;
        if (blk && (r.flags & END_HEADERS) !== 0) {
          blk.done = true;
          a.open.delete(from);
        }
      }
      current.set(r.stream, blk);
    } else if (r.kind === 'h2hdr') {
      const blk = current.get(r.stream);
      if (!blk || blk.stream !== r.h2Stream || blk.sender !== from) {
        throw new Error(`${o.file}: h2hdr row (frame ${r.frame}, h2 stream ${r.h2Stream}) follows no header block frame of its stream`);
      }
      blk.fields.push([r.name, r.value]);
    } else {
      const streams = new Set(a.frames.filter((f) => f.row.frame === r.frame && f.sender === from && f.row.type === H2_TYPE.DATA).map((f) => f.row.h2Stream));
      if (streams.size !== 1) throw new Error(`${o.file}: grpc row in frame ${r.frame} cannot be given a stream (DATA of ${streams.size} streams)`);
      a.grpc.push({ row: r, sender: from, stream: [...streams][0]! });
    }
  }

  // Pass 2: sides and streams.
  const out: OracleConn[] = [];
  for (const [tcpStream, a] of [...acc].sort((x, y) => x[0] - y[0])) {
    const conn = connOf.get(tcpStream)!;
    const [e0, e1] = ends.get(tcpStream)!;
    const other = (x: string) => (x === e0 ? e1 : e0);
    let client = a.blocks.find((b) => b.type === H2_TYPE.HEADERS && b.fields.some(([n]) => n === ':method'))?.sender;
    const byStatus = a.blocks.find((b) => b.type === H2_TYPE.HEADERS && b.fields.some(([n]) => n === ':status'))?.sender;
    client ??= byStatus !== undefined ? other(byStatus) : undefined;
    client ??= a.blocks.find((b) => b.type === H2_TYPE.PUSH_PROMISE)?.sender;
    if (client !== undefined && a.blocks.some((b) => b.type === H2_TYPE.PUSH_PROMISE && b.sender === client)) {
      client = other(client); // PUSH_PROMISE comes from the server
    }
    const side = (x: string): Side => (client === undefined ? (x === e0 ? 'client' : 'server') : x === client ? 'client' : 'server');
    const streams = new Map<number, OracleStream>();
    const stream = (id: number): OracleStream => {
      let s = streams.get(id);
      if (!s) {
        streams.set(id, (s = {
          conn, tcpStream, id, interim: [], grpc: { client: [], server: [] },
          data: { client: 0, server: 0, clientPadded: false, serverPadded: false, clientFrames: 0, serverFrames: 0 },
          ended: { client: false, server: false }, rst: [], frames: [],
        }));
      }
      return s;
    };
    const connFrames = new Map<number, number>();
    // Promised ids: the even stream ids in order of first appearance.
    const evens: number[] = [];
    for (const { row } of a.frames) {
      if (row.h2Stream === 0) {
        connFrames.set(row.type, (connFrames.get(row.type) ?? 0) + 1);
        continue;
      }
      if (row.h2Stream % 2 === 0 && !evens.includes(row.h2Stream)) evens.push(row.h2Stream);
    }
    for (const { row, sender: from } of a.frames) {
      if (row.h2Stream === 0) continue;
      const s = stream(row.h2Stream);
      if (!s.frames.includes(row.frame)) s.frames.push(row.frame);
      const who = side(from);
      if (row.type === H2_TYPE.DATA) {
        s.data[who] += row.length;
        s.data[who === 'client' ? 'clientFrames' : 'serverFrames']++;
        if (row.flags & PADDED) s.data[who === 'client' ? 'clientPadded' : 'serverPadded'] = true;
      }
      if ((row.type === H2_TYPE.DATA || row.type === H2_TYPE.HEADERS) && row.flags & END_STREAM) s.ended[who] = true;
      if (row.type === H2_TYPE.RST_STREAM) s.rst.push({ by: who, frame: row.frame });
    }
    let pushes = 0;
    for (const b of a.blocks) {
      const who = side(b.sender);
      if (b.type === H2_TYPE.PUSH_PROMISE) {
        const id = evens[pushes++];
        if (id === undefined) continue; // promised stream never showed up: nothing to compare
        const s = stream(id);
        s.request = { fields: b.fields, frame: b.frame, pushed: true, ...(b.done ? {} : { unfinished: true }) };
        continue;
      }
      const s = stream(b.stream);
      if (who === 'client') {
        if (!s.request) s.request = { fields: b.fields, frame: b.frame, ...(b.done ? {} : { unfinished: true }) };
        else (s.request.trailers ??= []).push(...b.fields);
        continue;
      }
      const status = b.fields.find(([n]) => n === ':status')?.[1];
      if (status !== undefined && /^1\d\d$/.test(status)) {
        s.interim.push(Number(status));
        continue;
      }
      if (!s.response) s.response = { fields: b.fields, frame: b.frame, ...(b.done ? {} : { unfinished: true }) };
      else (s.response.trailers ??= []).push(...b.fields);
    }
    for (const g of a.grpc) stream(g.stream).grpc[side(g.sender)].push({ size: g.row.messageLength, compressed: g.row.compressed });
    out.push({ conn, tcpStream, client, streams: [...streams.values()].sort((x, y) => x.id - y.id), connFrames });
  }
  return out;
}

// ---- tapwire's view -------------------------------------------------------------------------

export interface TapwireStream {
  conn: string;
  id: number;
  /** Records of this stream, in emission order (normally one). */
  records: (Http2Flow | GrpcFlow)[];
  client: string;
}

export function tapwireH2(records: readonly FlowRecord[]): TapwireStream[] {
  const by = new Map<string, TapwireStream>();
  for (const r of records) {
    if (r.protocol !== 'http2' && r.protocol !== 'grpc') continue;
    if (r.streamId === undefined) throw new Error(`tapwire ${r.protocol} record ${r.id} has no streamId`);
    const conn = connKey(r.src, r.dst);
    const k = `${conn}#${r.streamId}`;
    let s = by.get(k);
    if (!s) by.set(k, (s = { conn, id: r.streamId, records: [], client: endpoint(r.src.ip, r.src.port) }));
    s.records.push(r);
  }
  return [...by.values()];
}

// ---- comparison -----------------------------------------------------------------------------

/**
 * missing-stream / extra-stream: a stream only one side has. split-stream: tapwire emitted the
 * stream as several records. missing-half / extra-half: a request or response only one side has.
 * orientation: tapwire's client is tshark's server. field: a header field (pseudo or regular,
 * header section or trailers) with different values; missing-field / extra-field: a field only
 * tshark / only tapwire has. interim: 1xx statuses differ. grpc-messages: message sizes or
 * compressed flags differ in one direction. grpc-status: the trailer's grpc-status differs. rst:
 * tshark shows an RST_STREAM tapwire's record does not carry (or the reverse). body: DATA payload
 * bytes differ in one direction.
 */
export type H2DeviationKind =
  | 'missing-stream' | 'extra-stream' | 'split-stream' | 'missing-half' | 'extra-half' | 'orientation'
  | 'field' | 'missing-field' | 'extra-field' | 'interim' | 'grpc-messages' | 'grpc-status' | 'rst' | 'body';

export interface H2Deviation {
  kind: H2DeviationKind;
  /** HTTP/2 stream id (0 for connection-level deviations). */
  stream: number;
  /** What exactly: "req :path", "resp-trailer grpc-status", "client", "req" … (see compareStreams). */
  what: string;
  conn: string;
  detail: string;
}

/** One thing tshark decoded that tapwire must agree with: a field, a status, a gRPC message, an RST, a body length. */
export interface Item {
  stream: number;
  what: string;
  ok: boolean;
}

export interface StreamResult {
  conn: string;
  id: number;
  items: Item[];
  /** tapwire's incompleteReason / headersPartial, for the report. */
  notes: string[];
}

export interface H2Comparison {
  streams: StreamResult[];
  deviations: H2Deviation[];
  /** tapwire streams tshark has no rows for (also listed as extra-stream deviations). */
  extraStreams: TapwireStream[];
  /** RST_STREAM codes tapwire reports, for the hand-checked table: `${stream} ${by} ${code}`. */
  rstCodes: string[];
}

/** tapwire keeps header octets as latin1 strings; tshark prints UTF-8. Same octets, same text. */
function utf8(v: string): string {
  const b = Buffer.from(v, 'latin1');
  const s = b.toString('utf8');
  return Buffer.from(s, 'utf8').equals(b) ? s : v;
}

/** Repeated fields joined as tapwire joins them (src/protocols/http2/session.ts joinField). */
export function joinFields(fields: readonly Field[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const [n, v] of fields) {
    if (n.startsWith(':')) continue;
    const prev = m.get(n);
    m.set(n, prev === undefined ? v : `${prev}${n === 'cookie' ? '; ' : n === 'set-cookie' ? '\n' : ', '}${v}`);
  }
  return m;
}

function show(v: string | number | undefined): string {
  if (v === undefined) return '(absent)';
  const s = String(v);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 40)}…${s.slice(-20)} (${s.length} chars)` : s);
}

function msgs(list: readonly { size: number; compressed: boolean }[]): string {
  return `[${list.map((m) => `${m.size}${m.compressed ? 'z' : ''}`).join(',')}]`;
}

function tapMsgs(list: readonly RecordMessage[] | undefined): { size: number; compressed: boolean }[] {
  return (list ?? []).map((m) => ({ size: m.size, compressed: m.compressed === true }));
}

/**
 * Compares tshark's streams with tapwire's: per tshark stream, the tapwire record(s) of the same
 * connection and stream id. See H2DeviationKind for what is compared.
 */
export function compareStreams(oracle: readonly OracleConn[], tapwire: readonly TapwireStream[]): H2Comparison {
  const deviations: H2Deviation[] = [];
  const results: StreamResult[] = [];
  const rstCodes: string[] = [];
  const used = new Set<TapwireStream>();
  for (const oc of oracle) {
    const tapConn = tapwire.filter((t) => t.conn === oc.conn);
    if (oc.client !== undefined && tapConn.length > 0 && tapConn[0]!.client !== oc.client) {
      deviations.push({
        kind: 'orientation', stream: 0, what: 'client', conn: oc.conn,
        detail: `tshark's client is ${oc.client} (it sent :method), tapwire's is ${tapConn[0]!.client}`,
      });
    }
    for (const os of oc.streams) {
      const items: Item[] = [];
      const notes: string[] = [];
      const dev = (kind: H2DeviationKind, what: string, detail: string) => deviations.push({ kind, stream: os.id, what, conn: oc.conn, detail });
      const item = (what: string, ok: boolean) => items.push({ stream: os.id, what, ok });
      const t = tapConn.find((x) => x.id === os.id);
      const hasContent = os.request !== undefined || os.response !== undefined || os.rst.length > 0
        || os.grpc.client.length + os.grpc.server.length > 0 || os.data.clientFrames + os.data.serverFrames > 0;
      if (!hasContent) continue; // PRIORITY / WINDOW_UPDATE only: nothing a record carries
      results.push({ conn: oc.conn, id: os.id, items, notes });
      if (t) used.add(t);
      if (t && t.records.length > 1) {
        dev('split-stream', `${t.records.length} records`, `tapwire emitted stream ${os.id} as ${t.records.length} records: ${t.records.map((r) => `${r.id} (${r.request ? 'req' : '-'}/${r.response ? 'resp' : '-'}${r.error ? ` ${r.error.frame} ${r.error.code} by ${r.error.by}` : ''}${r.incompleteReason ? ` incomplete=${r.incompleteReason}` : ''})`).join(', ')}`);
      }
      const recs = t?.records ?? [];
      const req = recs.find((r) => r.request)?.request;
      const resp = recs.find((r) => r.response)?.response;
      for (const r of recs) {
        if (r.incompleteReason) notes.push(`incomplete=${r.incompleteReason}`);
        if (r.headersPartial) notes.push('headersPartial');
      }
      if (!t) {
        dev('missing-stream', `stream ${os.id}`, `tshark has stream ${os.id} (frames ${os.frames.join(',')}); tapwire has no record for it`);
      }

      // Header sections and trailers.
      const halves = [['req', os.request, req], ['resp', os.response, resp]] as const;
      for (const [label, oh, th] of halves) {
        if (!oh) {
          if (th && t) {
            const pseudo = label === 'req' ? `${req!.method} ${req!.path}` : `${resp!.status ?? '-'}`;
            dev('extra-half', label, `tapwire has a ${label === 'req' ? 'request' : 'response'} (${pseudo}, frames ${th.frames?.join('-')}) tshark shows no header block for`);
          }
          continue;
        }
        if (!th) {
          for (const [n] of oh.fields) item(`${label} ${n}`, false);
          if (t) dev('missing-half', label, `tshark has the ${label === 'req' ? 'request' : 'response'} header block (frame ${oh.frame}: ${oh.fields.map(([n, v]) => `${n}: ${v}`).join('; ').slice(0, 200)}); tapwire's record has none`);
          continue;
        }
        // Pseudo-header fields.
        const pseudoOf = (n: string): string | undefined => {
          if (label === 'req') {
            const q = th as NonNullable<typeof req>;
            return n === ':method' ? q.method || undefined : n === ':path' ? q.path || undefined : n === ':authority' ? q.authority : n === ':scheme' ? q.scheme : undefined;
          }
          const s = th as NonNullable<typeof resp>;
          return n === ':status' ? (s.status === undefined ? undefined : String(s.status)) : undefined;
        };
        const seenPseudo = new Set<string>();
        for (const [n, v] of oh.fields) {
          if (!n.startsWith(':') || seenPseudo.has(n)) continue;
          seenPseudo.add(n);
          const tv = pseudoOf(n);
          item(`${label} ${n}`, tv === v);
          if (tv === undefined) dev('missing-field', `${label} ${n}`, `tshark ${n}: ${show(v)} (frame ${oh.frame}); tapwire has none`);
          else if (tv !== v) dev('field', `${label} ${n}`, `tshark ${show(v)}, tapwire ${show(tv)} (frame ${oh.frame})`);
        }
        for (const n of [':method', ':path', ':authority', ':scheme', ':status']) {
          if (seenPseudo.has(n) || pseudoOf(n) === undefined) continue;
          if ((label === 'req') !== (n !== ':status')) continue;
          dev('extra-field', `${label} ${n}`, `tapwire ${n}: ${show(pseudoOf(n))}; tshark shows none`);
        }
        // Regular fields, header section then trailers.
        const sections = [[label, oh.fields, th.headers], [`${label}-trailer`, oh.trailers, th.trailers]] as const;
        for (const [sec, ofields, tmap] of sections) {
          const want = joinFields(ofields ?? []);
          const have = new Map(Object.entries(tmap ?? {}).map(([k, v]) => [k, utf8(v)]));
          for (const [n, v] of want) {
            const tv = have.get(n);
            item(`${sec} ${n}`, tv === v);
            if (tv === undefined) dev('missing-field', `${sec} ${n}`, `tshark ${show(v)}; tapwire has none`);
            else if (tv !== v) dev('field', `${sec} ${n}`, `tshark ${show(v)}, tapwire ${show(tv)}`);
          }
          for (const [n, v] of have) if (!want.has(n)) dev('extra-field', `${sec} ${n}`, `tapwire ${show(v)}; tshark shows none`);
        }
      }

      // Interim responses.
      if (os.interim.length > 0 || (resp?.interim?.length ?? 0) > 0) {
        const a = os.interim.join(','), b = (resp?.interim ?? []).map((x) => x.status).join(',');
        item('interim', a === b);
        if (a !== b) dev('interim', 'resp', `tshark interim [${a}], tapwire [${b}]`);
      }

      // gRPC messages and status.
      for (const [label, who, th] of [['req', 'client', req], ['resp', 'server', resp]] as const) {
        const want = os.grpc[who];
        const have = tapMsgs(th?.messages);
        if (want.length === 0 && have.length === 0) continue;
        for (let i = 0; i < want.length; i++) {
          item(`${label} grpc#${i + 1}`, have[i] !== undefined && have[i]!.size === want[i]!.size && have[i]!.compressed === want[i]!.compressed);
        }
        if (msgs(want) !== msgs(have)) {
          dev('grpc-messages', label, `tshark ${want.length} messages ${msgs(want)}, tapwire ${have.length} ${msgs(have)}${th?.messagesDropped ? ` (+${th.messagesDropped} dropped)` : ''} (z = compressed)`);
        }
      }
      const gs = os.response?.trailers?.find(([n]) => n === 'grpc-status')?.[1]
        ?? os.response?.fields.find(([n]) => n === 'grpc-status')?.[1];
      if (gs !== undefined) {
        const ok = resp?.grpcStatus !== undefined && String(resp.grpcStatus) === gs;
        item('grpc-status', ok);
        if (!ok) dev('grpc-status', 'resp', `tshark grpc-status ${gs}, tapwire ${resp?.grpcStatus ?? '(absent)'}`);
      } else if (resp?.grpcStatus !== undefined && os.response) {
        dev('grpc-status', 'resp', `tapwire grpc-status ${resp.grpcStatus}; tshark shows no grpc-status`);
      }

      // RST_STREAM.
      const errs = recs.filter((r) => r.error?.frame === 'RST_STREAM').map((r) => r.error!);
      for (const e of errs) rstCodes.push(`${os.id} ${e.by} ${e.code}`);
      for (const by of new Set(os.rst.map((x) => x.by))) {
        const ok = errs.some((e) => e.by === by);
        item(`rst ${by}`, ok);
        if (!ok) dev('rst', by, `tshark shows RST_STREAM from the ${by} (frame ${os.rst.filter((x) => x.by === by).map((x) => x.frame).join(',')}); tapwire's record has ${recs.map((r) => (r.error ? `${r.error.frame} ${r.error.code} by ${r.error.by}` : 'no error')).join(', ') || 'no record'}`);
      }
      for (const e of errs) if (!os.rst.some((x) => x.by === e.by)) dev('rst', e.by, `tapwire has RST_STREAM ${e.code} by the ${e.by}; tshark shows none`);

      // DATA bytes per direction (skipped where padding makes tshark's length an upper bound).
      for (const [label, who, th] of [['req', 'client', req], ['resp', 'server', resp]] as const) {
        const frames = who === 'client' ? os.data.clientFrames : os.data.serverFrames;
        const padded = who === 'client' ? os.data.clientPadded : os.data.serverPadded;
        if (frames === 0 || padded) continue;
        const want = os.data[who];
        const have = th?.bodySize;
        item(`${label} body`, have === want);
        if (have !== want) dev('body', label, `tshark DATA payload ${want} bytes in ${frames} frames, tapwire bodySize ${have ?? '(no half)'}`);
      }
    }
  }
  const extraStreams = tapwire.filter((t) => !used.has(t));
  for (const t of extraStreams) {
    deviations.push({
      kind: 'extra-stream', stream: t.id, what: `stream ${t.id}`, conn: t.conn,
      detail: `tapwire has stream ${t.id} (${t.records.map((r) => `${r.request?.method ?? '-'} ${r.request?.path ?? '-'} ${r.response?.status ?? '-'}`).join(', ')}); tshark shows no frame of it`,
    });
  }
  return { streams: results, deviations, extraStreams, rstCodes };
}
