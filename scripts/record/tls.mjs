// Records the TLS handshake decoder fixtures in pcaps/tls/ from real traffic on loopback.
//
//   node scripts/record/tls.mjs [OUT_DIR] [case ...]     (default OUT_DIR: pcaps/tls, all cases)
//
// A throwaway EC P-256 self-signed certificate for "tls.test" is made with `openssl req` in a temp
// dir. Each case listens a real TLS server on its own loopback address and port, captures that port
// with tcpdump, runs a real client, and stops both, so each capture holds whole connections
// (SYN to FIN). Nothing is decrypted: the decoder reads only the handshake's clear part.
//   tls13-curl        curl → `openssl s_server -www -tls1_3`: TLS 1.3, SNI tls.test, ALPN offered (h2, http/1.1), none chosen
//   tls12-curl        curl --tls-max 1.2 → `openssl s_server -www -alpn http/1.1`: TLS 1.2, ALPN http/1.1 chosen
//   tls12-resumed     `openssl s_client -tls1_2 -sess_out`, then `-sess_in`: a full TLS 1.2 handshake, then a resumed one
//   tls13-resumed     the same with TLS 1.3: the second connection resumes with a PSK (RFC 8446 §2.2)
//   hello-retry       s_client offering an X25519 key share to a server that only takes P-384: a HelloRetryRequest
//   node-https        node:https client (a non-keep-alive Agent, so one connection per request; Node caches the
//                     session, so the 2nd and 3rd resume) → node:https server
//   node-http2        node:http2 client and secure server, ALPN h2, two requests on one connection
//   http-on-443       plain HTTP/1.1 on port 443: the wrong-protocol negative case (decoded as http, never tls)
//   handshake-churn   a node:http service on 127.0.0.29:8080 that, for each of 6 inbound requests, calls an https
//                     upstream (127.0.0.30:8443) on a new connection with no session cache: a full TLS handshake
//                     per call (the connection-churn detector's TLS case)
// Addresses 127.0.0.21 and up; the server name is always tls.test (curl --resolve, s_client -servername).
import https from 'node:https';
import http from 'node:http';
import http2 from 'node:http2';
import { join } from 'node:path';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync, spawn } from 'node:child_process';
import { capture, requireTools, sleep, startChild, waitPort, listen, closeServer } from './lib.mjs';

const NAME = 'tls.test';
const CASES = {
  'tls13-curl': { host: '127.0.0.21', port: 4433 },
  'tls12-curl': { host: '127.0.0.22', port: 4433 },
  'tls12-resumed': { host: '127.0.0.23', port: 4433 },
  'tls13-resumed': { host: '127.0.0.24', port: 4433 },
  'hello-retry': { host: '127.0.0.25', port: 4433 },
  'node-https': { host: '127.0.0.26', port: 8443 },
  'node-http2': { host: '127.0.0.27', port: 8443 },
  'http-on-443': { host: '127.0.0.28', port: 443 },
  'handshake-churn': { host: '127.0.0.29', port: 8080 },
};

requireTools('openssl', 'curl', 'tcpdump', 'capinfos');
const args = process.argv.slice(2);
const out = args[0] && !(args[0] in CASES) ? args.shift() : 'pcaps/tls';
const only = args.length ? args : Object.keys(CASES);
for (const c of only) if (!(c in CASES)) { console.error(`record tls: unknown case ${c} (cases: ${Object.keys(CASES).join(', ')})`); process.exit(2); }

const tmp = mkdtempSync(join(tmpdir(), 'tapwire-tls-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const key = join(tmp, 'key.pem'), cert = join(tmp, 'cert.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
  '-days', '2', '-subj', `/CN=${NAME}`, '-addext', `subjectAltName=DNS:${NAME}`], { stdio: 'ignore' });

/** `openssl s_server -www` on host:port with extra flags, until stopped. */
async function sServer(host, port, extra) {
  const s = startChild('openssl', ['s_server', '-accept', `${host}:${port}`, '-cert', cert, '-key', key, '-www', '-naccept', '8', ...extra], { ready: 'ACCEPT' });
  await s.ready;
  await waitPort(port, host).catch(() => {});
  return s;
}

/** Runs a command to its end with `input` on stdin; rejects on a non-zero exit. */
function run(cmd, argv, input = '') {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let o = '';
    p.stdout.on('data', (d) => { o += d; });
    p.stderr.on('data', (d) => { o += d; });
    p.on('exit', (code) => (code === 0 ? resolve(o) : reject(new Error(`${cmd} ${argv.join(' ')} exited ${code}:\n${o}`))));
    p.stdin.end(input);
  });
}

const curl = (host, port, extra = []) => run('curl', ['-sS', '-k', '-o', '/dev/null', '--resolve', `${NAME}:${port}:${host}`, ...extra, `https://${NAME}:${port}/`]);
const GET = 'GET / HTTP/1.0\r\n\r\n';
const sClient = (host, port, extra) => run('openssl', ['s_client', '-connect', `${host}:${port}`, '-servername', NAME, '-ign_eof', '-quiet', ...extra], GET);

const RECORD = {
  async 'tls13-curl'({ host, port }) {
    const s = await sServer(host, port, ['-tls1_3']);
    await capture(file('tls13-curl'), filter(host, port), () => curl(host, port));
    await s.stop();
  },
  async 'tls12-curl'({ host, port }) {
    const s = await sServer(host, port, ['-tls1_2', '-alpn', 'http/1.1']);
    await capture(file('tls12-curl'), filter(host, port), () => curl(host, port, ['--tls-max', '1.2']));
    await s.stop();
  },
  async 'tls12-resumed'({ host, port }) {
    const s = await sServer(host, port, ['-tls1_2']);
    const sess = join(tmp, 'tls12.sess');
    await capture(file('tls12-resumed'), filter(host, port), async () => {
      await sClient(host, port, ['-tls1_2', '-sess_out', sess]);
      await sleep(100);
      await sClient(host, port, ['-tls1_2', '-sess_in', sess]);
    });
    await s.stop();
  },
  async 'tls13-resumed'({ host, port }) {
    const s = await sServer(host, port, ['-tls1_3']);
    const sess = join(tmp, 'tls13.sess');
    await capture(file('tls13-resumed'), filter(host, port), async () => {
      await sClient(host, port, ['-tls1_3', '-sess_out', sess]);
      await sleep(100);
      await sClient(host, port, ['-tls1_3', '-sess_in', sess]);
    });
    await s.stop();
  },
  async 'hello-retry'({ host, port }) {
    const s = await sServer(host, port, ['-tls1_3', '-groups', 'P-384']);
    await capture(file('hello-retry'), filter(host, port), () => sClient(host, port, ['-tls1_3', '-groups', 'X25519:P-384']));
    await s.stop();
  },
  async 'node-https'({ host, port }) {
    const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      res.setHeader('connection', 'close');
      res.end(`hello ${req.url}\n`);
    });
    await listen(server, port, host);
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    const get = (path) => new Promise((resolve, reject) => {
      https.get({ host, port, path, servername: NAME, rejectUnauthorized: false, agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    await capture(file('node-https'), filter(host, port), async () => {
      for (const p of ['/a', '/b', '/c']) {
        await get(p);
        await sleep(50);
      }
    });
    agent.destroy();
    await closeServer(server);
  },
  async 'node-http2'({ host, port }) {
    const server = http2.createSecureServer({ key: readFileSync(key), cert: readFileSync(cert), allowHTTP1: false });
    server.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`hello ${headers[':path']}\n`);
    });
    await listen(server, port, host);
    await capture(file('node-http2'), filter(host, port), async () => {
      const client = http2.connect(`https://${NAME}:${port}`, { host, servername: NAME, rejectUnauthorized: false, lookup: (_h, _o, cb) => cb(null, host, 4) });
      for (const p of ['/one', '/two']) {
        await new Promise((resolve, reject) => {
          const r = client.request({ ':path': p });
          r.on('error', reject);
          r.resume();
          r.on('end', resolve);
        });
      }
      await new Promise((resolve) => client.close(resolve));
    });
    server.close();
  },
  async 'handshake-churn'({ host, port }) {
    const upstreamHost = '127.0.0.30', upstreamPort = 8443;
    const upstream = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => res.end('{"price":42}'));
    await listen(upstream, upstreamPort, upstreamHost);
    const service = http.createServer((req, res) => {
      // A new Agent per call and no session cache: every call pays a full handshake.
      const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 0 });
      https.get({ host: upstreamHost, port: upstreamPort, localAddress: host, path: '/price', servername: 'pricing.test', rejectUnauthorized: false, agent }, (up) => {
        up.resume();
        up.on('end', () => res.end('ok\n'));
      }).on('error', () => { res.statusCode = 502; res.end(); });
    });
    await listen(service, port, host);
    await capture(file('handshake-churn'), `host ${host}`, async () => {
      for (let i = 0; i < 6; i++) {
        await new Promise((resolve, reject) => {
          http.get({ host, port, path: `/checkout/${i}`, agent: false }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
        });
        await sleep(20);
      }
    });
    await closeServer(service);
    await closeServer(upstream);
  },
  async 'http-on-443'({ host, port }) {
    const server = http.createServer((req, res) => res.end('plain\n'));
    await listen(server, port, host);
    await capture(file('http-on-443'), filter(host, port), () => new Promise((resolve, reject) => {
      http.get({ host, port, path: '/', agent: false }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
    }));
    await closeServer(server);
  },
};

function file(name) { return join(out, `${name}.pcap`); }
function filter(host, port) { return `host ${host} and tcp port ${port}`; }

for (const name of only) {
  await RECORD[name](CASES[name]);
}
process.exit(0);
