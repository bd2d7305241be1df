import type { Entry, Har, Header } from 'har-format';
import type { FlowRecord, RecordHalf } from './record.js';
import { httpHalves } from './protocols/index.js';
import { endpoint } from '../common/index.js';

/** HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) for browser devtools and viewers. */
export const HAR_CREATOR = { name: 'tapwire', version: '0.1.0' };

function headerList(h: Record<string, string>): Header[] {
  const out: Header[] = [];
  for (const [name, value] of Object.entries(h)) {
    for (const v of name === 'set-cookie' ? value.split('\n') : [value]) out.push({ name, value: v });
  }
  return out;
}

function cookies(h: Record<string, string>, name: 'cookie' | 'set-cookie') {
  const v = h[name];
  if (!v) return [];
  const list = name === 'cookie' ? v.split(/;\s*/) : v.split('\n').map((c) => c.split(';')[0]!);
  return list.map((c) => {
    const eq = c.indexOf('=');
    return eq < 0 ? { name: c, value: '' } : { name: c.slice(0, eq), value: c.slice(eq + 1) };
  });
}

function headersSize(h: RecordHalf): number {
  return Math.max(-1, h.size - h.bodySize);
}

const ms = (s: number) => Math.max(0, Math.round(s * 1e6) / 1e3);

/** One HAR entry per HTTP flow. Flows without a request cannot be entries and are skipped. */
export function harEntry(r: FlowRecord): Entry | undefined {
  // HAR describes HTTP exchanges only; PostgreSQL statements have no place in it.
  if (!httpHalves(r)) return undefined;
  const req = r.request;
  if (!req) return undefined;
  const resp = r.response;
  const host = req.authority ?? req.headers['host'] ?? endpoint(r.dst);
  const scheme = req.scheme ?? 'http';
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(req.path) ? req.path : `${scheme}://${host}${req.path.startsWith('/') ? '' : '/'}${req.path}`;
  let queryString: { name: string; value: string }[] = [];
  try {
    queryString = [...new URL(url).searchParams].map(([name, value]) => ({ name, value }));
  } catch { /* CONNECT targets and odd paths have no query */ }
  const send = ms(req.end - req.start);
  const wait = resp ? ms(resp.start - req.end) : 0;
  const receive = resp ? ms(resp.end - resp.start) : 0;
  const entry: Entry = {
    startedDateTime: new Date(req.start * 1000).toISOString(),
    time: send + wait + receive,
    request: {
      method: req.method,
      url,
      httpVersion: `HTTP/${req.version}`,
      cookies: cookies(req.headers, 'cookie'),
      headers: headerList(req.headers),
      queryString,
      headersSize: headersSize(req),
      bodySize: req.bodySize,
      ...(req.body !== undefined ? {
        postData: {
          mimeType: req.headers['content-type'] ?? '',
          text: req.body,
          ...(req.bodyEncoding ? { comment: 'base64' } : {}),
        },
      } : {}),
    },
    response: {
      status: resp?.status ?? 0,
      statusText: resp?.reason ?? '',
      httpVersion: resp ? `HTTP/${resp.version}` : '',
      cookies: resp ? cookies(resp.headers, 'set-cookie') : [],
      headers: resp ? headerList(resp.headers) : [],
      content: {
        size: resp?.bodySize ?? 0,
        mimeType: resp?.headers['content-type'] ?? '',
        ...(resp?.body !== undefined ? { text: resp.body } : {}),
        ...(resp?.bodyEncoding ? { encoding: 'base64' } : {}),
      },
      redirectURL: resp?.headers['location'] ?? '',
      headersSize: resp ? headersSize(resp) : -1,
      bodySize: resp ? resp.bodySize : -1,
    },
    cache: {},
    timings: { send, wait, receive },
    serverIPAddress: r.dst.ip,
    connection: r.connectionId,
  };
  const extra = entry as Entry & Record<string, unknown>;
  extra._id = r.id;
  if (r.incomplete) extra._incomplete = r.incompleteReason ?? true;
  return entry;
}

export function harLog(entries: Entry[]): Har {
  return { log: { version: '1.2', creator: HAR_CREATOR, entries } };
}
