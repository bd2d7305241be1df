import { createHmac } from 'node:crypto';
import type { HttpFlowRecord, RecordHalf } from './record.js';

/**
 * One redaction pass over every record, whatever the protocol. Secret values are replaced by a
 * keyed hash prefix, "[redacted:1a2b3c4d5e6f]": the same secret seen twice gives the same token,
 * so a credential forwarded from one service to another is still recognisable, while the value
 * itself never leaves the decoder.
 */
export const DEFAULT_REDACTED_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key'];

/** Query parameters and JSON fields whose names look like credentials. */
export const SECRET_NAME = /token|key|secret|passw(?:or)?d|signature/i;

export interface RedactOptions {
  key: Buffer;
  /** Extra header names (any case) to redact. */
  headers?: string[];
}

export class Redactor {
  private readonly headerSet: Set<string>;
  private readonly cache = new Map<string, string>();

  constructor(private readonly opts: RedactOptions) {
    this.headerSet = new Set([...DEFAULT_REDACTED_HEADERS, ...(opts.headers ?? []).map((h) => h.toLowerCase())]);
  }

  /** The token that stands for a secret value. */
  token(value: string): string {
    let t = this.cache.get(value);
    if (t === undefined) {
      t = `[redacted:${createHmac('sha256', this.opts.key).update(value).digest('hex').slice(0, 12)}]`;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(value, t);
    }
    return t;
  }

  /**
   * An HTTP-family record's headers, bodies and query values. Called by the HTTP family's record
   * module (protocols/http.ts); SQL records carry no headers, their bind parameters are
   * redacted with --redact-params.
   */
  record(r: HttpFlowRecord): void {
    if (r.request) {
      this.half(r.request);
      r.request.path = this.path(r.request.path);
    }
    if (r.response) this.half(r.response);
  }

  private half(h: RecordHalf): void {
    this.headers(h.headers);
    if (h.trailers) this.headers(h.trailers);
    if (h.body && !h.bodyEncoding) {
      const ct = h.headers['content-type'] ?? '';
      const t = h.body.trimStart();
      if (/json/i.test(ct) || t.startsWith('{') || t.startsWith('[')) h.body = this.jsonBody(h.body);
      else if (/x-www-form-urlencoded/i.test(ct)) h.body = this.query(h.body);
    }
  }

  private headers(hs: Record<string, string>): void {
    for (const name of Object.keys(hs)) {
      if (!this.headerSet.has(name)) continue;
      const v = hs[name]!;
      if (name === 'cookie') hs[name] = this.cookies(v, '; ');
      else if (name === 'set-cookie') hs[name] = v.split('\n').map((c) => this.setCookie(c)).join('\n');
      else {
        // Keep the scheme ("Bearer", "Basic") visible: it says what kind of credential passed.
        const m = /^([A-Za-z][A-Za-z0-9-]*) +(\S.*)$/.exec(v);
        hs[name] = m && (name === 'authorization' || name === 'proxy-authorization') ? `${m[1]} ${this.token(m[2]!)}` : this.token(v);
      }
    }
  }

  private cookies(v: string, sep: string): string {
    return v.split(/;\s*/).map((c) => {
      const eq = c.indexOf('=');
      return eq < 0 ? c : `${c.slice(0, eq)}=${this.token(c.slice(eq + 1))}`;
    }).join(sep);
  }

  private setCookie(c: string): string {
    const semi = c.indexOf(';');
    const pair = semi < 0 ? c : c.slice(0, semi);
    const eq = pair.indexOf('=');
    if (eq < 0) return c;
    return `${pair.slice(0, eq)}=${this.token(pair.slice(eq + 1))}${semi < 0 ? '' : c.slice(semi)}`;
  }

  /** Redacts credential-like query parameters in a request target. */
  path(p: string): string {
    const q = p.indexOf('?');
    if (q < 0) return p;
    return p.slice(0, q + 1) + this.query(p.slice(q + 1));
  }

  private query(qs: string): string {
    if (!SECRET_NAME.test(qs)) return qs;
    return qs.split('&').map((kv) => {
      const eq = kv.indexOf('=');
      if (eq < 0) return kv;
      let name = kv.slice(0, eq);
      try { name = decodeURIComponent(name.replace(/\+/g, ' ')); } catch { /* keep as sent */ }
      // The token is left unencoded so people and tools can read and match it in paths.
      return SECRET_NAME.test(name) ? `${kv.slice(0, eq)}=${this.token(kv.slice(eq + 1))}` : kv;
    }).join('&');
  }

  private jsonBody(text: string): string {
    if (!SECRET_NAME.test(text)) return text;
    try {
      return JSON.stringify(this.jsonValue(JSON.parse(text), 0));
    } catch (err) {
      // A cut-off JSON body cannot be parsed, and one nested past MAX_JSON_DEPTH is not walked:
      // redact "name": "value" pairs textually instead.
      if (!(err instanceof SyntaxError || err instanceof TooDeep)) throw err;
      return text.replace(/("([^"\\]*)"\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d[\d.eE+-]*)/g, (all, pre: string, name: string, val: string) =>
        SECRET_NAME.test(name) ? `${pre}"${this.token(unquote(val))}"` : all);
    }
  }

  private jsonValue(v: unknown, depth: number): unknown {
    // JSON (RFC 8259 §9) lets a parser limit nesting; this walk recurses once per level, and a
    // body a few thousand levels deep exhausted the stack, stopping the connection's decoding
    // (found by npm run fuzz: http2/truncate/973d76d0).
    if (depth > MAX_JSON_DEPTH) throw new TooDeep();
    if (Array.isArray(v)) return v.map((x) => this.jsonValue(x, depth + 1));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        out[k] = SECRET_NAME.test(k) && (typeof x === 'string' || typeof x === 'number') ? this.token(String(x)) : this.jsonValue(x, depth + 1);
      }
      return out;
    }
    return v;
  }
}

/** Nesting walked in a JSON body; deeper bodies are redacted as text (no real payload nests so). */
const MAX_JSON_DEPTH = 256;

class TooDeep extends Error {}

function unquote(v: string): string {
  if (!v.startsWith('"')) return v;
  try {
    return JSON.parse(v) as string;
  } catch {
    return v.slice(1, -1);
  }
}
