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

/**
 * http-parser-js trusts its peer more than a sniffer may: a negative or non-hex chunk size, or
 * a chunk-size line that never ends, would loop or grow without bound. This subclass checks
 * them and fails the message instead (the session turns that into a violation).
 */
export function createParser(type: 'REQUEST' | 'RESPONSE'): Parser {
  const p = new HTTPParser(type);
  const base = HTTPParser.prototype as unknown as Record<string, (this: Parser) => unknown>;
  const consumeLine = base.consumeLine!;
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
