// Records pcaps/verify/load-cycle.pcap: load-generator traffic that must not read as retries (issue 12).
//
//   node scripts/record/load.mjs [OUT_DIR]            (default OUT_DIR: pcaps/verify)
//   node scripts/record/load.mjs --verify [OUT_DIR]   (only re-check the existing capture with tshark)
//
// The shape of the wrk recording that made `tapwire verify` print thousands of "retries": wrk with
// 8 keep-alive connections (one per thread) cycles through five paths, one of which (/fail) always
// answers 503, so every connection repeats /fail every fifth request while the other seven are busy.
// None of it is a retry: each connection asks for other paths in between, and identical calls are in
// flight side by side.
//
// The server is a node:http server on 127.0.0.36:8080 (after the stories' 127.0.0.20-35); wrk
// connects from 127.0.0.1. Each answer waits a millisecond or two, as a service with some work to do
// would: that keeps the capture small (a few thousand exchanges in wrk's 1 s) without slowing the
// client, which sends its next request as soon as an answer is in, as wrk does. Each thread starts at
// its own place in the cycle (wrk's setup()), so the connections ask for different paths at a time.
// Needs root (tcpdump on lo), wrk, tcpdump, tshark, capinfos.
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture, closeServer, listen, requireTools, startChild } from './lib.mjs';
import { tsharkRows } from './stories/tshark.mjs';

const SERVER = { host: '127.0.0.36', port: 8080 };
const CONNECTIONS = 8;
/** What each path answers, and how long it takes (ms). */
const PATHS = {
  '/': { status: 200, delayMs: 2, body: 'tapwire load test\n', type: 'text/plain' },
  '/items': { status: 200, delayMs: 2, body: JSON.stringify([{ id: 7, name: 'plum jam' }, { id: 8, name: 'fig roll' }]), type: 'application/json' },
  '/fail': { status: 503, delayMs: 1, body: JSON.stringify({ error: 'unavailable' }), type: 'application/json' },
  '/items/7': { status: 200, delayMs: 2, body: JSON.stringify({ id: 7, name: 'plum jam', price: '3.50' }), type: 'application/json' },
  '/about': { status: 200, delayMs: 3, body: 'a node:http server for the load capture\n', type: 'text/plain' },
};

const LUA = `-- one connection per thread: the thread's counter is its connection's place in the cycle
local paths = { ${Object.keys(PATHS).map((p) => `"${p}"`).join(', ')} }
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init(args)
  n = id
end
function request()
  n = n + 1
  return wrk.format("GET", paths[n % #paths + 1])
end
`;

function serve() {
  const server = http.createServer((req, res) => {
    const p = PATHS[req.url] ?? { status: 404, delayMs: 0, body: 'not found\n', type: 'text/plain' };
    setTimeout(() => {
      res.writeHead(p.status, { 'content-type': p.type, 'content-length': Buffer.byteLength(p.body) });
      res.end(p.body);
    }, p.delayMs);
  });
  return listen(server, SERVER.port, SERVER.host);
}

async function record(file) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-load-'));
  const lua = join(dir, 'cycle.lua');
  writeFileSync(lua, LUA);
  const server = await serve();
  try {
    await capture(file, `tcp and host ${SERVER.host} and port ${SERVER.port}`, async () => {
      const wrk = startChild('wrk', [`-t${CONNECTIONS}`, `-c${CONNECTIONS}`, '-d1s', '-s', lua, `http://${SERVER.host}:${SERVER.port}/`]);
      const { code } = await wrk.exited;
      if (code !== 0) throw new Error(`wrk failed (${code}):\n${wrk.output()}`);
      console.log(wrk.output().trim().split('\n').map((l) => `    wrk: ${l}`).join('\n'));
    });
  } finally {
    await closeServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What tshark shows; throws when the capture does not have the load's shape. */
function check(file) {
  const requests = tsharkRows(file, 'http.request', ['tcp.stream', 'http.request.uri']);
  const responses = tsharkRows(file, 'http.response', ['http.response.code', 'http.response_for.uri']);
  const streams = new Set(requests.map(([s]) => s));
  const perPath = {};
  for (const [, uri] of requests) perPath[uri] = (perPath[uri] ?? 0) + 1;
  // Each connection cycles: it never asks for the same path twice in a row.
  const last = new Map();
  let repeats = 0;
  for (const [stream, uri] of requests) {
    if (last.get(stream) === uri) repeats++;
    last.set(stream, uri);
  }
  const fails = responses.filter(([code, uri]) => code === '503' && uri.endsWith('/fail')).length;
  const facts = [
    `${requests.length} requests on ${streams.size} connections, ${responses.length} responses; ${repeats} times a connection asked for the path it had just asked for`,
    `per path: ${Object.entries(perPath).map(([p, n]) => `${p} ${n}`).join(', ')}`,
    `${fails} × 503 for /fail; ${responses.filter(([code]) => code !== '200' && code !== '503').length} other non-200 answers`,
  ];
  const problems = [];
  if (streams.size !== CONNECTIONS) problems.push(`${streams.size} connections, expected ${CONNECTIONS}`);
  if (requests.length < 500) problems.push(`only ${requests.length} requests`);
  if (Object.keys(perPath).length !== Object.keys(PATHS).length) problems.push(`paths seen: ${Object.keys(perPath).join(' ')}`);
  if (repeats) problems.push(`${repeats} repeated paths on a connection: the cycle is broken`);
  if (fails < 100) problems.push(`only ${fails} 503s for /fail`);
  if (problems.length) throw new Error(`${file}: ${problems.join('; ')}\n${facts.join('\n')}`);
  return facts;
}

async function main() {
  requireTools('tcpdump', 'wrk', 'capinfos', 'tshark');
  const args = process.argv.slice(2);
  const verifyOnly = args[0] === '--verify';
  if (verifyOnly) args.shift();
  const file = join(args[0] ?? 'pcaps/verify', 'load-cycle.pcap');
  if (!verifyOnly) await record(file);
  console.log(`  load-cycle:\n${check(file).map((f) => `    ${f}`).join('\n')}`);
}

main().then(() => process.exit(0), (e) => {
  console.error(`record load: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
