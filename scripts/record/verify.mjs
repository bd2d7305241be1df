// Checks the recorded captures with tshark (the decoding oracle) and prints a table.
//
//   node scripts/record/verify.mjs [PCAPS_DIR]        (default: pcaps)
//
// For every pcaps/http1/*.pcap: packets, HTTP requests and responses as tshark counts them (every
// message in a frame counts, so 4 pipelined requests in one segment count 4), compared with what
// each case sent. Some counts differ from the real traffic because of tshark 4.0 itself; those
// expectations say so. For the demo captures: the SELECTs, their parameter, and the spacing of the
// payment attempts. Exits non-zero when something does not match.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2] ?? 'pcaps';

function tshark(file, filter, fields) {
  const args = ['-r', file, '-Y', filter, '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=|'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t'));
}
const count = (file, filter, field) => tshark(file, filter, [field]).reduce((n, [v]) => n + v.split('|').filter(Boolean).length, 0);
const packets = (file) => Number(/Number of packets:\s*(\d+)/.exec(execFileSync('capinfos', ['-M', '-c', file], { encoding: 'utf8' }))[1]);

// expected [requests, responses] as tshark reports them, and why when that differs from the traffic
const http1 = {
  keepalive: [6, 6],
  pipelined: [4, 4],
  'chunked-trailers': [3, 3],
  'content-encoding': [5, 5],
  'expect-100': [2, 5, 'tshark: 3 POSTs, 2 × 100 Continue + 2 × 201 + 413; the refused POST (10 MB declared, no body sent) is never shown as a request'],
  'head-204-304': [5, 5],
  'close-delimited': [2, 2],
  'upgrade-websocket': [1, 1, '+ 10 WebSocket frames (5 masked client, 5 server)'],
  'upgrade-h2c': [1, 1, 'HTTP/1.1 GET + 101; then HTTP/2: 2 streams (GET / on stream 1, GET /style.css on 3)'],
  'connect-tunnel': [2, 1, 'tshark: CONNECT, 200, tunnelled GET; the tunnelled 200 response is not dissected as HTTP'],
  'port-9999': [2, 2],
  'not-http-port-80': [0, 0],
  'large-bodies': [2, 2],
  'many-connections': [20, 20],
  'mixed-methods': [4, 5, 'tshark 4.0 does not know PURGE: the 5th request shows as "Continuation"'],
  'mid-stream': [4, 5, 'starts with the response to the lost POST /api/login'],
};

let failed = 0;
const rows = [];
for (const [name, [wantReq, wantResp, note]] of Object.entries(http1)) {
  const f = join(dir, 'http1', `${name}.pcap`);
  if (!existsSync(f)) { rows.push(`| ${name} | missing | | | FAIL |`); failed++; continue; }
  const req = count(f, 'http.request', 'http.request.method');
  const resp = count(f, 'http.response', 'http.response.code');
  let ok = req === wantReq && resp === wantResp;
  let extra = '';
  if (name === 'upgrade-websocket') {
    const masked = count(f, 'websocket.mask == 1', 'websocket.opcode');
    const plain = count(f, 'websocket.mask == 0', 'websocket.opcode');
    ok &&= masked === 5 && plain === 5;
    extra = ` [ws frames: ${masked} masked, ${plain} unmasked]`;
  } else if (name === 'upgrade-h2c') {
    const h2headers = tshark(f, 'http2', ['http2.type']).flatMap(([v]) => v.split('|')).filter((t) => t === '1').length;
    ok &&= h2headers === 3;
    extra = ` [h2 HEADERS frames: ${h2headers}]`;
  }
  if (!ok) failed++;
  rows.push(`| ${name}.pcap | ${packets(f)} | ${req} | ${resp} | ${ok ? 'ok' : `FAIL (want ${wantReq}/${wantResp})`}${extra} ${note ?? ''} |`);
}
console.log('| capture | packets | http requests | http responses | check |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);

// ---- demo stories ------------------------------------------------------------------------------
function demo(file, wantSelects, wantDelays) {
  if (!existsSync(file)) { console.log(`${file}: missing`); failed++; return; }
  const parses = tshark(file, 'pgsql.type == "Parse"', ['pgsql.query']).flatMap(([q]) => q.split('|'));
  const selects = parses.filter((q) => q.startsWith('SELECT id, customer, total, status FROM orders WHERE id = $1'));
  const binds = tshark(file, 'pgsql.type == "Bind" && pgsql.frontend', ['pgsql.val.data'])
    .flatMap(([v]) => v.split('|')).map((hex) => Buffer.from(hex, 'hex').toString());
  const attempts = tshark(file, 'http.request.method == "POST" && tcp.dstport == 8081', ['frame.time_relative']).map(([t]) => Number(t));
  const codes = tshark(file, 'http.response && tcp.srcport == 8081', ['http.response.code']).map(([c]) => c);
  const deltas = attempts.slice(1).map((t, i) => Math.round((t - attempts[i]) * 1000));
  const gets = count(file, 'http.request && tcp.dstport == 8080', 'http.request.method');
  const ok = selects.length === wantSelects && parses.length === wantSelects
    && binds.length === wantSelects && binds.every((b) => b === '42')
    && codes.join(',') === '503,503,503,201'
    && deltas.length === wantDelays.length && deltas.every((d, i) => Math.abs(d - wantDelays[i]) <= 60);
  if (!ok) failed++;
  console.log(`${file}: ${packets(file)} packets; ${gets} requests to order-service; ${selects.length} SELECT(s) `
    + `(${parses.length} Parse, Bind params: ${[...new Set(binds)].join(',')} ×${binds.length}); payment answers ${codes.join(',')}; `
    + `attempt deltas ${deltas.join(' / ')} ms (want ~${wantDelays.join(' / ')}) — ${ok ? 'ok' : 'FAIL'}`);
}
demo(join(dir, 'demo', 'demo.pcap'), 12, [200, 200, 200]);
demo(join(dir, 'demo', 'demo-fixed.pcap'), 1, [200, 400, 800]);

if (failed) { console.error(`verify: ${failed} check(s) failed`); process.exit(1); }
