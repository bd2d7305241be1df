// Minimal typing for http-parser-js 0.5 (it ships none). Only what tapwire uses.
declare module 'http-parser-js' {
  export interface ParserInfo {
    versionMajor: number;
    versionMinor: number;
    headers: string[];
    method?: string;
    url?: string;
    statusCode?: number;
    statusMessage?: string;
    upgrade: boolean;
    shouldKeepAlive: boolean;
  }
  export class HTTPParser {
    static REQUEST: 'REQUEST';
    static RESPONSE: 'RESPONSE';
    constructor(type: 'REQUEST' | 'RESPONSE');
    initialize(type: 'REQUEST' | 'RESPONSE'): void;
    execute(chunk: Buffer, start?: number, length?: number): number | Error;
    finish(): Error | undefined;
    onHeadersComplete: (info: ParserInfo) => number | boolean | void;
    onHeaders: (trailers: string[], url: string) => void;
    onBody: (chunk: Buffer, start: number, len: number) => void;
    onMessageComplete: () => void;
    // Internal state: read by tapwire to learn positions and framing; written only by parser.ts's
    // overrides and by reader.ts (body_bytes across a capture gap, isChunked for a final chunked coding).
    state: string;
    offset: number;
    end: number;
    body_bytes: number | null;
    isChunked: boolean;
    line: string;
    maxHeaderSize: number;
    info: ParserInfo;
    [state: string]: unknown;
  }
}
