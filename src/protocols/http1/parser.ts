import httpParser from 'http-parser-js';
import { DEFAULT_HTTP1_LIMITS, type Http1Limits } from './limits.js';

const { HTTPParser } = httpParser as unknown as { HTTPParser: typeof import('http-parser-js').HTTPParser };
export { HTTPParser };
export type Parser = InstanceType<typeof HTTPParser>;

const CHUNK_SIZE = /^[0-9a-fA-F]{1,15}(?:[ \t]*;.*)?[ \t]*$/;

function parseError(code: string): Error {
  const err = new Error(code) as Error & { code: string };
  err.code = code;
  return err;
}

/** RFC 9112 §3: method SP request-target SP HTTP-version, with method a token (RFC 9110 §5.6.2). */
const STRICT_REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(\d)\.(\d)$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** What the lenient request-line parse keeps beyond http-parser-js's info. */
export interface RequestLineExtra {
  /** The version as sent ("1.1", "1.", "" when absent). */
  version: string;
  /** Set when the line broke RFC 9112 and was read the way tshark and Zeek read it. */
  lenient: boolean;
}

// Header bytes as sent: http-parser-js decodes lines as 'ascii', which clears the high bit, so
// "Content-Length: \xB10" would read as 10 and UTF-8 values would be mangled. latin1 keeps every byte.
(HTTPParser as unknown as { encoding: string }).encoding = 'latin1';

/** A field line starts with field-name ":" (RFC 9110 §5.1), or is an obs-fold continuation. */
const FIELD_LINE = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:|[ \t])/;

type Internals = Parser & {
  lineExtra?: RequestLineExtra;
  limits: Http1Limits;
  consumeLine(): string | undefined;
  parseHeader(line: string, headers: string[]): void;
};
const proto = HTTPParser.prototype as unknown as Internals;
const baseConsumeLine = proto.consumeLine;
const baseParseHeader = proto.parseHeader;

/**
 * http-parser-js checks its 80 KiB only between execute() calls and only in the header section,
 * so a long line completed inside one call would pass. Every line is checked here instead.
 */
function consumeLine(this: Internals): string | undefined {
  const line = baseConsumeLine.call(this);
  if ((line ?? this.line).length > this.limits.maxLine) throw parseError('HPE_HEADER_OVERFLOW');
  return line;
}

/** http-parser-js drops a field line without a colon; the message is invalid (RFC 9112 §5). */
function parseHeader(this: Internals, line: string, headers: string[]): void {
  if (!FIELD_LINE.test(line)) throw parseError('HPE_INVALID_HEADER_TOKEN');
  baseParseHeader.call(this, line, headers);
}

/**
 * Request lines: http-parser-js accepts only [A-Z-] methods and exact versions. A sniffer must
 * report what clients really send (CCM_POST, "GET /HTTP/1.1", "OPTIONS HTTP/1.1"), so a line
 * that is not RFC-conformant is split on spaces as tshark does, and flagged. Its method must
 * still be upper-case led: "0" (a chunk terminator after a lost framing header) is no request.
 */
function requestLine(this: Internals): void {
  const line = this.consumeLine();
  if (!line) return;
  let method: string, url: string, major: number, minor: number, version: string, lenient = false;
  const m = STRICT_REQUEST_LINE.exec(line);
  if (m) {
    method = m[1]!; url = m[2]!; major = +m[3]!; minor = +m[4]!; version = `${m[3]}.${m[4]}`;
  } else {
    const parts = line.split(' ').filter((x) => x.length > 0);
    if (parts.length === 0 || parts.length > 3 || !TOKEN.test(parts[0]!) || !/^[A-Z]/.test(parts[0]!)) throw parseError('HPE_INVALID_CONSTANT');
    const v = parts[2] === undefined ? undefined : /^HTTP\/(\d)\.(\d?)$/.exec(parts[2]);
    if (parts[2] !== undefined && !v) throw parseError('HPE_INVALID_VERSION');
    method = parts[0]!;
    url = parts[1] ?? '';
    version = v ? `${v[1]}.${v[2]}` : '';
    major = v ? +v[1]! : 1;
    minor = v && v[2] ? +v[2] : 0;
    lenient = true;
  }
  this.info.method = method;
  this.info.url = url;
  this.info.versionMajor = major;
  this.info.versionMinor = minor;
  this.lineExtra = { version, lenient };
  this.body_bytes = 0;
  this.state = 'HEADER';
}

/** Chunk sizes must be hex (a negative or garbage size would loop), and the line bounded. */
function chunkHead(this: Internals): void {
  const line = baseConsumeLine.call(this);
  if (line === undefined) {
    if (this.line.length > this.limits.maxChunkLine) throw parseError('HPE_INVALID_CHUNK_SIZE');
    return;
  }
  if (!CHUNK_SIZE.test(line)) throw parseError('HPE_INVALID_CHUNK_SIZE');
  this.body_bytes = parseInt(line, 16);
  this.state = this.body_bytes ? 'BODY_CHUNK' : 'BODY_CHUNKTRAILERS';
}

/**
 * An http-parser-js parser hardened for input a sniffer cannot trust: every overridden state
 * fails the message instead of looping or growing, and the session turns that into a violation.
 */
export function createParser(type: 'REQUEST' | 'RESPONSE', limits: Http1Limits = DEFAULT_HTTP1_LIMITS): Parser {
  const p = new HTTPParser(type) as Internals;
  p.limits = limits;
  p.consumeLine = consumeLine;
  p.parseHeader = parseHeader;
  p.REQUEST_LINE = requestLine;
  p.BODY_CHUNKHEAD = chunkHead;
  return p;
}
