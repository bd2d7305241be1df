// What tshark (the decoding oracle) shows in a story capture, for the stories' checks
// (scripts/record/stories/*.mjs `check`) and for pcaps/verify/README.md.
//
//   exchanges(file)  every HTTP request with its response, as tshark pairs them
//   pgQueries(file)  every PostgreSQL query (Parse or simple Query) with its bind parameters
//   under(parent, calls)  the calls made while an inbound request was in flight
import { execFileSync } from 'node:child_process';

/** One array per displayed packet, one entry per field; a field's occurrences joined by `|`. */
export function tsharkRows(file, filter, fields) {
  const args = ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|',
    ...fields.flatMap((f) => ['-e', f])];
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  return out.split('\n').filter(Boolean).map((line) => line.split('\t'));
}

const headerLines = (s) => Object.fromEntries((s ? s.split('|') : []).map((l) => {
  const i = l.indexOf(':');
  return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim().replace(/\\r\\n$/, '')];
}));

/**
 * HTTP requests in capture order: { frame, time, src, dst, port, method, uri, headers, status,
 * end, responseHeaders, body }; status/end are undefined when no response came. Times in seconds
 * from the capture's first packet; headers by lower-case name; body is the response body as text.
 */
export function exchanges(file) {
  const requests = tsharkRows(file, 'http.request', ['frame.number', 'frame.time_relative', 'ip.src', 'ip.dst',
    'tcp.dstport', 'tcp.stream', 'http.request.method', 'http.request.uri', 'http.request.line'])
    .map(([frame, time, src, dst, port, stream, method, uri, lines]) => ({
      frame: Number(frame), time: Number(time), src, dst, port: Number(port), stream: Number(stream), method, uri,
      headers: headerLines(lines),
    }));
  const byFrame = new Map(requests.map((r) => [r.frame, r]));
  for (const [time, requestIn, status, lines, body] of tsharkRows(file, 'http.response',
    ['frame.time_relative', 'http.request_in', 'http.response.code', 'http.response.line', 'http.file_data'])) {
    Object.assign(byFrame.get(Number(requestIn)), {
      end: Number(time), status: Number(status), responseHeaders: headerLines(lines), body,
    });
  }
  return requests;
}

/** PostgreSQL queries in capture order: { time, src, query, params } (params: Bind values, as text). */
export function pgQueries(file) {
  const rows = tsharkRows(file, 'pgsql.type == "Parse" || pgsql.type == "Simple query" || pgsql.type == "Bind"',
    ['frame.time_relative', 'ip.src', 'pgsql.type', 'pgsql.query', 'pgsql.val.data']);
  const out = [];
  for (const [time, src, types, query, params] of rows) {
    if (types.includes('Parse') || types.includes('Simple query')) out.push({ time: Number(time), src, query, params: [] });
    if (types.includes('Bind') && params) out.at(-1).params = params.split('|').map((h) => Buffer.from(h, 'hex').toString());
  }
  return out;
}

/** The calls (exchanges or queries) that `parent`'s service made while handling it. */
export const under = (parent, calls) => calls.filter((c) => c.src === parent.dst && c.time >= parent.time
  && (parent.end === undefined || c.time <= parent.end));

/** "pg <query>" or "GET 127.0.0.21:8081/products/1003". */
export const callName = (c) => (c.query !== undefined ? `pg ${c.query}` : `${c.method} ${c.dst}:${c.port}${c.uri}`);

/**
 * One line per inbound request to `service`: "frame 4 GET /x → 200 in 12 ms: 1 × pg …, 12 × pg …",
 * with the calls (HTTP exchanges and queries) the service made while handling it.
 */
export function callTree(service, http, queries = []) {
  return http.filter((e) => e.dst === service.host && e.port === service.port).map((e) => {
    const calls = [...under(e, http), ...under(e, queries)].sort((a, b) => a.time - b.time);
    const answer = e.status === undefined ? 'no response' : `${e.status} in ${Math.round((e.end - e.time) * 1000)} ms`;
    return `frame ${e.frame} ${e.method} ${e.uri} → ${answer}${calls.length ? `: ${tally(calls.map(callName))}` : ''}`;
  });
}

/** Throw with `what` unless ok. */
export function expect(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

/** "3 × A, 2 × B" for a list of strings, in first-seen order. */
export function tally(items) {
  const n = new Map();
  for (const i of items) n.set(i, (n.get(i) ?? 0) + 1);
  return [...n].map(([k, c]) => `${c} × ${k}`).join(', ');
}
