// Records a large capture of real TLS traffic for the benchmarks (git-ignored: bench/.cache/).
//
//   node scripts/record/tls-load.mjs [--min-mb 50] [--out bench/.cache/tls-50m.pcap]
//
// One node:https server on 127.0.0.1:18930 (a throwaway EC P-256 certificate for tls.test made with
// `openssl req` in a temp dir) and 16 client loops in a child process, each making one request per
// new TLS connection (a non-keep-alive Agent): a third forced to TLS 1.2, the rest TLS 1.3; half of
// the loops keep a session cache, so their connections resume (TLS 1.2 tickets, TLS 1.3 PSK), the
// others make full handshakes. Responses are 200 B to 16 KiB, so there are encrypted bytes to count.
// tcpdump records the port on lo until the file reaches --min-mb (MiB); it ends mid-stream. tshark
// decodes it with: tshark -r FILE -Y tls.handshake
// Needs root (tcpdump), tcpdump, capinfos (tshark package), openssl.
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTools, startChild } from './lib.mjs';
import { benchArgs, captureUntilSize, reuse, summary } from './bench-capture.mjs';

const HOST = '127.0.0.1';
const PORT = 18930;
const LOOPS = 16;

/** The load itself (child process): the server and the client loops, until SIGINT. */
async function load(key, cert) {
  let seed = 20261207;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    res.setHeader('connection', 'close');
    res.end(Buffer.alloc(200 + Math.floor(rand() * 16184), 0x61));
  });
  await new Promise((r) => server.listen(PORT, HOST, r));
  console.log('serving');
  let stop = false;
  process.on('SIGINT', () => { stop = true; server.close(); setTimeout(() => process.exit(0), 200); });
  const loop = async (i) => {
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: i % 2 === 0 ? 100 : 0 });
    const maxVersion = i % 3 === 0 ? 'TLSv1.2' : 'TLSv1.3';
    while (!stop) {
      await new Promise((resolve) => {
        https.get({ host: HOST, port: PORT, path: `/item/${i}`, servername: 'tls.test', rejectUnauthorized: false, agent, maxVersion, ALPNProtocols: ['http/1.1'] }, (res) => {
          res.resume();
          res.on('end', resolve);
          res.on('error', resolve);
        }).on('error', resolve);
      });
    }
  };
  await Promise.all(Array.from({ length: LOOPS }, (_x, i) => loop(i)));
}

async function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === '--load') return load(argv[1], argv[2]);
  const { minMb, out } = benchArgs('scripts/record/tls-load', argv, { minMb: 50, prefix: 'tls' });
  if (reuse(out, minMb)) return;
  requireTools('tcpdump', 'capinfos', 'openssl');
  if (process.getuid?.() !== 0) {
    console.error('scripts/record/tls-load: must run as root (tcpdump on lo)');
    process.exit(2);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'tapwire-tls-load-'));
  try {
    const key = join(tmp, 'key.pem'), cert = join(tmp, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=tls.test'], { stdio: 'ignore' });
    const r = await captureUntilSize({
      out, minMb, filter: `tcp port ${PORT} and host ${HOST}`,
      startLoad: () => startChild(process.execPath, [fileURLToPath(import.meta.url), '--load', key, cert]),
    });
    summary(out, r, `node:https, ${LOOPS} loops, one request per connection, TLS 1.2 and 1.3, half resumed`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(() => { if (process.argv[2] !== '--load') process.exit(0); }, (e) => {
  console.error(`scripts/record/tls-load: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
