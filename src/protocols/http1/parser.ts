import httpParser from 'http-parser-js';

const { HTTPParser } = httpParser as unknown as { HTTPParser: typeof import('http-parser-js').HTTPParser };
export { HTTPParser };
export type Parser = InstanceType<typeof HTTPParser>;

/** Longest chunk-size line accepted (RFC 9112 §7.1 allows extensions; 1 KiB is generous). */
const MAX_CHUNK_LINE = 1024;
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

/**
 * http-parser-js trusts its peer more than a sniffer may: a negative or non-hex chunk size, or
 * a chunk-size line that never ends, would loop or grow without bound. This subclass checks
 * them and fails the message instead (the session turns that into a violation).
 */
export function createParser(type: 'REQUEST' | 'RESPONSE'): Parser {
  const p = new HTTPParser(type);
  const base = HTTPParser.prototype as unknown as Record<string, (this: Parser) => unknown>;
  const consumeLine = base.consumeLine!;
  // Request lines: http-parser-js accepts only [A-Z-] methods and exact versions. A sniffer must
  // report what clients really send (CCM_POST, "GET /HTTP/1.1", "OPTIONS HTTP/1.1"), so a line
  // that is not RFC-conformant is split on spaces like tshark does, and flagged.
  p.REQUEST_LINE = function (this: Parser & { lineExtra?: RequestLineExtra }) {
    const line = consumeLine.call(this) as string | undefined;
    if (!line) return;
    let method: string, url: string, major: number, minor: number, version: string, lenient = false;
    const m = STRICT_REQUEST_LINE.exec(line);
    if (m) {
      method = m[1]!; url = m[2]!; major = +m[3]!; minor = +m[4]!; version = `${m[3]}.${m[4]}`;
    } else {
      const parts = line.split(' ').filter((x) => x.length > 0);
      if (parts.length === 0 || !TOKEN.test(parts[0]!) || parts.length > 3) throw parseError('HPE_INVALID_CONSTANT');
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
  };
  p.BODY_CHUNKHEAD = function (this: Parser) {
    const line = consumeLine.call(this) as string | undefined;
    if (line === undefined) {
      if (this.line.length > MAX_CHUNK_LINE) throw parseError('HPE_INVALID_CHUNK_SIZE');
      return;
    }
    if (!CHUNK_SIZE.test(line)) throw parseError('HPE_INVALID_CHUNK_SIZE');
    this.body_bytes = parseInt(line, 16);
    this.state = this.body_bytes ? 'BODY_CHUNK' : 'BODY_CHUNKTRAILERS';
  };
  return p;
}
