import httpParser from 'http-parser-js';
import { DEFAULT_HTTP1_LIMITS, type Http1Limits } from './limits.js';

const { HTTPParser } = httpParser as unknown as { HTTPParser: typeof import('http-parser-js').HTTPParser };
export { HTTPParser };
export type Parser = InstanceType<typeof HTTPParser>;

/** RFC 9112 §7.1: chunk-size is hex, optionally followed by chunk extensions. */
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

/** A field line starts with field-name ":" (RFC 9110 §5.1), or is an obs-fold continuation. */
const FIELD_LINE = /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:|[ \t])/;

const baseParseHeader = (HTTPParser.prototype as unknown as { parseHeader(line: string, headers: string[]): void }).parseHeader;

/**
 * An http-parser-js parser hardened for input a sniffer cannot trust: every overridden state
 * fails the message instead of looping or growing, and the session turns that into a violation.
 * The overrides are http-parser-js 0.5 internals (its execute() loop calls `this[this.state]()`,
 * and the states call consumeLine and parseHeader); the version is pinned in package.json and
 * every override is covered by test/http1. They live on this subclass, so nothing process-wide
 * is changed (http-parser-js's own line reader decodes with a static HTTPParser.encoding).
 *
 * How the patching could go, keeping http-parser-js: each override fills a gap in its public
 * options, so the clean replacement is upstream — latin1 line decoding (or an instance
 * `encoding`: RFC 9110 §5.5 field values are octets), a `maxLineSize` checked per line, a strict
 * field-line check, and a request-line hook (or a `lenient` flag that reports what it relaxed, as
 * llhttp's lenient flags do); with those, this file would only set options. The remaining reads
 * of internals (state, body_bytes, line; all in reader.ts) need one public call to skip n body
 * bytes after a capture gap. Until then, only this file and reader.ts touch internals.
 */
class HardenedParser extends HTTPParser {
  declare limits: Http1Limits;
  declare lineExtra?: RequestLineExtra;
  declare chunk: Buffer;

  constructor(type: 'REQUEST' | 'RESPONSE', limits: Http1Limits) {
    super(type);
    this.limits = limits;
  }

  /**
   * http-parser-js's consumeLine, reading bytes as latin1 and bounding every line. Its own decodes
   * as 'ascii', which clears the high bit, so "Content-Length: \xB10" would read as 10 and UTF-8
   * values would be mangled; latin1 keeps every byte. It checks its 80 KiB only between execute()
   * calls and only in the header section, so a long line completed inside one call would pass:
   * every line is checked here instead (the bound is the recipient's, RFC 9110 §5.4).
   */
  readLine(max: number): string | undefined {
    const end = this.end;
    const chunk = this.chunk;
    for (let i = this.offset; i < end; i++) {
      if (chunk[i] === 0x0a) {
        let line = this.line + chunk.toString('latin1', this.offset, i);
        if (line.charCodeAt(line.length - 1) === 0x0d) line = line.substring(0, line.length - 1);
        this.line = '';
        this.offset = i + 1;
        if (line.length > max) throw parseError('HPE_HEADER_OVERFLOW');
        return line;
      }
    }
    // The line goes on in the next segment.
    this.line += chunk.toString('latin1', this.offset, end);
    this.offset = end;
    if (this.line.length > max) throw parseError('HPE_HEADER_OVERFLOW');
    return undefined;
  }

  consumeLine(): string | undefined {
    return this.readLine(this.limits.maxLine);
  }

  /** http-parser-js drops a field line without a colon; the message is invalid (RFC 9112 §5). */
  parseHeader(line: string, headers: string[]): void {
    if (!FIELD_LINE.test(line)) throw parseError('HPE_INVALID_HEADER_TOKEN');
    baseParseHeader.call(this, line, headers);
  }

  /**
   * Request lines: http-parser-js accepts only [A-Z-] methods and exact versions. A sniffer must
   * report what clients really send (CCM_POST, "GET /HTTP/1.1", "OPTIONS HTTP/1.1"), so a line
   * that is not RFC-conformant is split on spaces as tshark does, and flagged. Its method must
   * still be upper-case led: "0" (a chunk terminator after a lost framing header) is no request.
   */
  REQUEST_LINE(): void {
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
  BODY_CHUNKHEAD(): void {
    const line = this.readLine(Infinity); // bounded below, under its own error code
    if (line === undefined) {
      if (this.line.length > this.limits.maxChunkLine) throw parseError('HPE_INVALID_CHUNK_SIZE');
      return;
    }
    if (!CHUNK_SIZE.test(line)) throw parseError('HPE_INVALID_CHUNK_SIZE');
    this.body_bytes = parseInt(line, 16);
    this.state = this.body_bytes ? 'BODY_CHUNK' : 'BODY_CHUNKTRAILERS';
  }
}

export function createParser(type: 'REQUEST' | 'RESPONSE', limits: Http1Limits = DEFAULT_HTTP1_LIMITS): Parser {
  return new HardenedParser(type, limits);
}
