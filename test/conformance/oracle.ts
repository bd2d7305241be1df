/**
 * Reader for the tshark oracle files that sit next to every shared capture (`F.oracle.tsv`,
 * format in ../shared/pcaps/MANIFEST.md "Oracle format").
 *
 *   # header lines (command, stderr, column list)
 *   kind <TAB> frame <TAB> stream <TAB> kind-specific columns...
 *
 * `frame` is the 1-based frame in which tshark finished reassembling the PDU; `stream` is
 * `tcp.stream` (a number) or `u<udp.stream>`. Values escape TAB, LF, CR and backslash as
 * `\t \n \r \\`. Empty columns mean tshark had no such field. The oracle is tshark's opinion,
 * not ground truth: conformance tests compare against it and explain every disagreement.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/conformance/oracle.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The shared capture set: a sibling of the repository, never copied into it. */
export const PCAP_DIR = path.resolve(REPO_ROOT, '../shared/pcaps');
export const PCAPS_PRESENT = existsSync(path.join(PCAP_DIR, 'MANIFEST.md'));
export const PCAPS_MISSING_REASON = `conformance captures not found at ${PCAP_DIR} (expected next to the repository as ../shared/pcaps); conformance tests skipped`;

/** Fields every row has. */
interface RowBase {
  /** 1-based frame in which tshark completed the PDU. */
  frame: number;
  /** tcp.stream number; UDP rows have `u<n>` and are kept as a string in `udpStream`. */
  stream: number;
  udpStream?: string;
}

/** An endpoint as the oracle writes it: `1.2.3.4:80` or `[::1]:8000`. */
export interface OracleEndpoint {
  ip: string;
  port: number;
}

export interface TcpStreamRow extends RowBase {
  kind: 'tcp_stream';
  /** The endpoint that sent the first packet tshark gave the stream. */
  node0: OracleEndpoint;
  node1: OracleEndpoint;
  /** Reassembled payload bytes per direction (`-z follow,tcp,raw`) and their sha256 (hex). */
  node0Bytes: number;
  node1Bytes: number;
  node0Sha256: string;
  node1Sha256: string;
}

export interface HttpReqRow extends RowBase {
  kind: 'http_req';
  method: string;
  uri: string;
  version: string;
  host: string;
  /** Content-Length header value as text ('' when absent). */
  contentLength: string;
  transferEncoding: string;
  contentEncoding: string;
  upgrade: string;
  /** tshark's File Data length: after de-chunking and content decoding. Undefined when empty. */
  bodyLen?: number;
  /** Frame of the matching http_resp row, when tshark paired one. */
  responseIn?: number;
}

export interface HttpRespRow extends RowBase {
  kind: 'http_resp';
  version: string;
  code: number;
  phrase: string;
  contentLength: string;
  transferEncoding: string;
  contentEncoding: string;
  contentType: string;
  bodyLen?: number;
  /** Frame of the matching http_req row, when tshark paired one. */
  requestIn?: number;
}

/** One HTTP/2 frame as tshark dissected it (it has no direction: see the frame's packet). */
export interface H2FrameRow extends RowBase {
  kind: 'h2';
  /** Stream identifier of the frame (0 for connection frames). */
  h2Stream: number;
  /** Frame type: 0 DATA, 1 HEADERS, 2 PRIORITY, 3 RST_STREAM, 4 SETTINGS, 5 PUSH_PROMISE, 6 PING, 7 GOAWAY, 8 WINDOW_UPDATE, 9 CONTINUATION. */
  type: number;
  /** Frame flags (the oracle writes them as hex, `0x04`). */
  flags: number;
  /** Frame payload length (the 24-bit length field). */
  length: number;
}

/**
 * One HPACK-decoded header field. It belongs to the header block of the nearest preceding `h2`
 * row of type HEADERS, PUSH_PROMISE or CONTINUATION in the same frame (rows keep tshark's order);
 * `h2Stream` is that frame's stream, so a PUSH_PROMISE's fields carry the associated stream, not
 * the promised one (the oracle has no promised stream id).
 */
export interface H2HeaderRow extends RowBase {
  kind: 'h2hdr';
  h2Stream: number;
  name: string;
  value: string;
}

/** One gRPC message (5-byte prefix: compressed flag, length). No stream id: see the frame's DATA rows. */
export interface GrpcRow extends RowBase {
  kind: 'grpc';
  compressed: boolean;
  messageLength: number;
}

/**
 * One PostgreSQL message as tshark dissected it (`pg` rows). `info` is tshark's summary of the
 * message's fields: `query=SQL` (Simple query), `statement=NAME query=SQL` (Parse), `tag=TAG`
 * (Command completion), `SEVERITY CODE MESSAGE` (Error, Notice), `authtype=N` (Authentication
 * request), `pid=N key=N` (Cancel request), `status=I` (Ready for query), ... ('' for none).
 */
export interface PgRow extends RowBase {
  kind: 'pg';
  /** F: frontend (client) message, B: backend (server). */
  dir: 'F' | 'B';
  /** tshark's message name: "Simple query", "Parse", "Command completion", "Error", ... */
  type: string;
  /** The message length field (4 + body; the type byte not counted). */
  length: number;
  info: string;
}

/** Any other kind (ws, dns, ...): its columns unparsed but unescaped. */
export interface OtherRow extends RowBase {
  kind: string;
  values: string[];
}

export type OracleRow = TcpStreamRow | HttpReqRow | HttpRespRow | H2FrameRow | H2HeaderRow | GrpcRow | PgRow | OtherRow;

export interface Oracle {
  /** Path of the `.oracle.tsv` file. */
  file: string;
  /** `#` lines without the leading "# ". */
  header: string[];
  /** tshark's stderr when it complained about the file (`# tshark_stderr:`), unescaped. */
  tsharkStderr?: string;
  rows: OracleRow[];
  tcpStreams: TcpStreamRow[];
  httpReqs: HttpReqRow[];
  httpResps: HttpRespRow[];
  /** HTTP/2 rows (h2, h2hdr, grpc) in file order: header fields follow the frame they came in. */
  h2Rows: (H2FrameRow | H2HeaderRow | GrpcRow)[];
  /** PostgreSQL messages in file order. */
  pgRows: PgRow[];
}

/** Undoes the oracle's escaping: `\t \n \r \\`. Any other backslash pair is kept as is. */
export function unescapeValue(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\([tnr\\])/g, (_m, c: string) => (c === 't' ? '\t' : c === 'n' ? '\n' : c === 'r' ? '\r' : '\\'));
}

/**
 * `1.2.3.4:80` or `[2001:db8::1]:443`. tshark writes `:0` when its follow found no address
 * (a stream whose only packet is cut inside the TCP header): that gives ip "".
 */
export function parseEndpoint(s: string): OracleEndpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) throw new Error(`oracle: endpoint "${s}" is neither ip:port nor [ipv6]:port`);
  return { ip: m[1]!, port: Number(m[2]) };
}

function optInt(s: string | undefined, what: string, where: string): number | undefined {
  if (s === undefined || s === '') return undefined;
  if (!/^\d+$/.test(s)) throw new Error(`${where}: ${what} "${s}" is not a whole number`);
  return Number(s);
}

function reqInt(s: string | undefined, what: string, where: string): number {
  const n = optInt(s, what, where);
  if (n === undefined) throw new Error(`${where}: ${what} is empty`);
  return n;
}

/** Columns after kind/frame/stream, per kind (MANIFEST "Oracle format"). */
const COLUMNS = {
  tcp_stream: 6,
  http_req: 10,
  http_resp: 9,
  h2: 4,
  h2hdr: 3,
  grpc: 2,
  pg: 4,
} as const;

function hexFlags(s: string | undefined, where: string): number {
  if (s === undefined || !/^0x[0-9a-fA-F]{1,2}$/.test(s)) throw new Error(`${where}: flags "${s}" are not 0xNN`);
  return parseInt(s.slice(2), 16);
}

/** Parses the text of an oracle file; `file` is used in error messages only. */
export function parseOracle(text: string, file = '<oracle>'): Oracle {
  const header: string[] = [];
  const rows: OracleRow[] = [];
  let tsharkStderr: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') continue;
    const where = `${file}:${i + 1}`;
    if (line.startsWith('#')) {
      const h = line.replace(/^# ?/, '');
      header.push(h);
      const m = /^tshark_stderr: (.*)$/.exec(h);
      if (m) tsharkStderr = unescapeValue(m[1]!);
      continue;
    }
    const cols = line.split('\t').map(unescapeValue);
    const [kind, frameS, streamS] = cols;
    if (!kind || frameS === undefined || streamS === undefined) throw new Error(`${where}: fewer than 3 columns`);
    const v = cols.slice(3);
    const want = COLUMNS[kind as keyof typeof COLUMNS];
    if (want !== undefined && v.length !== want) {
      throw new Error(`${where}: ${kind} row has ${v.length} columns after kind/frame/stream, expected ${want}`);
    }
    const base: RowBase = { frame: reqInt(frameS, 'frame', where), stream: -1 };
    if (/^u\d+$/.test(streamS)) base.udpStream = streamS;
    else base.stream = reqInt(streamS, 'stream', where);
    switch (kind) {
      case 'tcp_stream':
        rows.push({
          ...base, kind,
          node0: parseEndpoint(v[0]!), node1: parseEndpoint(v[1]!),
          node0Bytes: reqInt(v[2], 'node0_bytes', where), node1Bytes: reqInt(v[3], 'node1_bytes', where),
          node0Sha256: v[4]!, node1Sha256: v[5]!,
        });
        break;
      case 'http_req':
        rows.push({
          ...base, kind,
          method: v[0]!, uri: v[1]!, version: v[2]!, host: v[3]!, contentLength: v[4]!,
          transferEncoding: v[5]!, contentEncoding: v[6]!, upgrade: v[7]!,
          bodyLen: optInt(v[8], 'body_len', where), responseIn: optInt(v[9], 'response_in', where),
        });
        break;
      case 'http_resp':
        rows.push({
          ...base, kind,
          version: v[0]!, code: reqInt(v[1], 'code', where), phrase: v[2]!, contentLength: v[3]!,
          transferEncoding: v[4]!, contentEncoding: v[5]!, contentType: v[6]!,
          bodyLen: optInt(v[7], 'body_len', where), requestIn: optInt(v[8], 'request_in', where),
        });
        break;
      case 'h2':
        rows.push({
          ...base, kind,
          h2Stream: reqInt(v[0], 'h2_stream', where), type: reqInt(v[1], 'type', where), flags: hexFlags(v[2], where),
          length: reqInt(v[3], 'length', where),
        });
        break;
      case 'h2hdr':
        rows.push({ ...base, kind, h2Stream: reqInt(v[0], 'h2_stream', where), name: v[1]!, value: v[2]! });
        break;
      case 'grpc': {
        const c = reqInt(v[0], 'compressed', where);
        if (c > 1) throw new Error(`${where}: grpc compressed flag "${v[0]}" is neither 0 nor 1`);
        rows.push({ ...base, kind, compressed: c === 1, messageLength: reqInt(v[1], 'message_length', where) });
        break;
      }
      case 'pg':
        if (v[0] !== 'F' && v[0] !== 'B') throw new Error(`${where}: pg direction "${v[0]}" is neither F nor B`);
        rows.push({ ...base, kind, dir: v[0], type: v[1]!, length: reqInt(v[2], 'length', where), info: v[3]! });
        break;
      default:
        rows.push({ ...base, kind, values: v });
    }
  }
  return {
    file, header, tsharkStderr, rows,
    tcpStreams: rows.filter((r): r is TcpStreamRow => r.kind === 'tcp_stream'),
    httpReqs: rows.filter((r): r is HttpReqRow => r.kind === 'http_req'),
    httpResps: rows.filter((r): r is HttpRespRow => r.kind === 'http_resp'),
    h2Rows: rows.filter((r): r is H2FrameRow | H2HeaderRow | GrpcRow => r.kind === 'h2' || r.kind === 'h2hdr' || r.kind === 'grpc'),
    pgRows: rows.filter((r): r is PgRow => r.kind === 'pg'),
  };
}

/** Reads `<capture>.oracle.tsv`. */
export function readOracle(capture: string): Oracle {
  const file = `${capture}.oracle.tsv`;
  return parseOracle(readFileSync(file, 'utf8'), file);
}

/** Every capture in the shared set that has an oracle, as paths relative to PCAP_DIR, sorted. */
export function listCaptures(dir = PCAP_DIR): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSorted(d)) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'LICENSES') walk(p);
      } else if (e.name.endsWith('.oracle.tsv')) out.push(path.relative(dir, p.slice(0, -'.oracle.tsv'.length)));
    }
  };
  walk(dir);
  return out.sort();
}

function readdirSorted(d: string) {
  return readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
}

/** Endpoint as a comparable string: `ip|port`, with IPv6 in the oracle's compressed form. */
export function endpointKey(e: OracleEndpoint | { ip: string; port: number }): string {
  return `${e.ip}|${e.port}`;
}
