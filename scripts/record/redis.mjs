// Records the Redis decoder fixtures in pcaps/redis/ from real traffic on loopback.
//
//   node scripts/record/redis.mjs [OUT_DIR] [case ...]     (default OUT_DIR: pcaps/redis, all cases)
//
// Each case starts its own redis-server (Debian's, `--save '' --appendonly no`, in a temp dir removed
// at exit) on one port on 127.0.0.1, starts tcpdump on that port, drives it, stops tcpdump and the
// server, so each capture holds whole connections. Cases:
//   redis-cli    redis-cli, commands on stdin over one connection (after its COMMAND DOCS): a GET miss, SET, GET hit, INCR, an
//                error (LPUSH on a string), AUTH with no password set (an error, its argument
//                redacted), a hash with a password field, and `redis-cli --pipe` (a pipeline of 50 SETs)
//   redis-node   a Node socket speaking RESP: a pipeline of 20 commands in one write, MULTI/EXEC and
//                MULTI/DISCARD, SUBSCRIBE/PSUBSCRIBE with PUBLISH from a second connection (RESP2),
//                HELLO 3 then a miss, a map, a double, and pub/sub pushes (RESP3)
// Keys, values and the order of commands are fixed; ports, timing and the server's run id are not.
// After each capture tshark (-d tcp.port==PORT,resp) counts the RESP messages it sees.
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { capture, requireTools, sleep, startChild, waitPort } from './lib.mjs';

const HOST = '127.0.0.1';
const PORTS = { 'redis-cli': 18601, 'redis-node': 18602 };

/** A command as a client sends it: an array of bulk strings. */
function cmd(...words) {
  return `*${words.length}\r\n` + words.map((w) => `$${Buffer.byteLength(w)}\r\n${w}\r\n`).join('');
}

async function startRedis(port) {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-redis-'));
  const srv = startChild('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], { ready: 'Ready to accept connections' });
  await srv.ready;
  await waitPort(port, HOST);
  return { async stop() { await srv.stop('SIGTERM', 5000); rmSync(dir, { recursive: true, force: true }); } };
}

function cli(port, input, args = []) {
  return execFileSync('redis-cli', ['-h', HOST, '-p', String(port), ...args], { input, encoding: 'utf8' });
}

/** A RESP client on a raw socket: send bytes, wait until `n` top-level replies are in (counted by a tiny reader). */
function connect(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: HOST }, () => resolve(client(s)));
    s.once('error', reject);
  });
}

function client(s) {
  let buf = Buffer.alloc(0);
  s.on('data', (d) => { buf = Buffer.concat([buf, d]); });
  return {
    /** Writes `data` and waits until the server has sent `marker` (a string the last reply contains). */
    async send(data, marker) {
      const from = data ? buf.length : 0; // nothing sent: a push that may have come already
      if (data) s.write(data);
      const until = Date.now() + 5000;
      while (!buf.subarray(from).toString('latin1').includes(marker)) {
        if (Date.now() > until) throw new Error(`no "${marker}" from redis after ${JSON.stringify(data)}; got ${JSON.stringify(buf.subarray(from).toString('latin1'))}`);
        await sleep(5);
      }
      await sleep(20);
    },
    close() { return new Promise((r) => { s.end(); s.once('close', r); }); },
  };
}

const CASES = {
  async 'redis-cli'(port) {
    // One connection reading commands from stdin (redis-cli first asks COMMAND DOCS: a large nested reply).
    cli(port, [
      'GET user:42:profile', 'SET user:42:profile "{\\"name\\":\\"Ada\\"}" EX 300', 'GET user:42:profile', 'INCR visits', 'INCR visits',
      'LPUSH user:42:profile x', 'GET nosuch:key', 'HSET session:7 user ada password hunter2', 'HGETALL session:7',
      'DEL session:7 user:42:profile', '',
    ].join('\n'));
    // Commands as arguments: a connection each, no COMMAND DOCS. AUTH with no password set is an error.
    cli(port, '', ['AUTH', 'not-a-real-password']);
    cli(port, '', ['GET', 'visits']);
    let pipe = '';
    for (let i = 0; i < 50; i++) pipe += cmd('SET', `bulk:${i}`, `value-${i}`);
    cli(port, pipe, ['--pipe']);
  },

  async 'redis-node'(port) {
    const a = await connect(port);
    // A pipeline: twenty commands in one write, the replies in one go.
    let p = '';
    for (let i = 0; i < 10; i++) p += cmd('SET', `order:${i}`, `{"id":${i}}`) + cmd('GET', `order:${i - 2}`);
    await a.send(p, `{"id":7}`);
    await a.send(cmd('GET', 'order:19'), '$-1\r\n');
    // MULTI/EXEC: each queued command, then EXEC's array of results; a DISCARDed one.
    await a.send(cmd('MULTI'), '+OK');
    await a.send(cmd('INCR', 'stock:1'), 'QUEUED');
    await a.send(cmd('HSET', 'cart:1', 'item', 'book'), 'QUEUED');
    await a.send(cmd('GET', 'stock:1'), 'QUEUED');
    await a.send(cmd('EXEC'), '*3\r\n');
    await a.send(cmd('MULTI'), '+OK');
    await a.send(cmd('SET', 'stock:1', '0'), 'QUEUED');
    await a.send(cmd('DISCARD'), '+OK');
    await a.send(cmd('NOSUCHCOMMAND', 'x'), '-ERR');
    // Pub/sub in RESP2: a subscriber, a publisher on a second connection.
    const sub = await connect(port);
    await sub.send(cmd('SUBSCRIBE', 'orders', 'stock'), ':2\r\n');
    await sub.send(cmd('PSUBSCRIBE', 'cache:*'), ':3\r\n');
    await a.send(cmd('PUBLISH', 'orders', 'order 7 created'), ':1\r\n');
    await a.send(cmd('PUBLISH', 'cache:invalidate', 'user:42'), ':1\r\n');
    await sub.send('', 'user:42');
    await sub.send(cmd('UNSUBSCRIBE'), ':1\r\n');
    await sub.send(cmd('PUNSUBSCRIBE'), ':0\r\n');
    await sub.send(cmd('PING'), '+PONG');
    await sub.close();
    // HELLO 3 mid-connection: RESP3 replies (null, map, double) and pushes.
    const b = await connect(port);
    await b.send(cmd('GET', 'nosuch'), '$-1\r\n');
    await b.send(cmd('HELLO', '3'), 'proto');
    await b.send(cmd('GET', 'nosuch'), '_\r\n');
    await b.send(cmd('HGETALL', 'cart:1'), 'book');
    await b.send(cmd('ZADD', 'rank', '2.5', 'ada'), ':1\r\n');
    await b.send(cmd('ZSCORE', 'rank', 'ada'), ',2.5\r\n');
    await b.send(cmd('SUBSCRIBE', 'orders'), ':1\r\n');
    await a.send(cmd('PUBLISH', 'orders', 'order 8 created'), ':1\r\n');
    await b.send('', 'order 8 created');
    await b.close();
    await a.close();
  },
};

async function main() {
  requireTools('redis-server', 'redis-cli', 'tcpdump', 'capinfos', 'tshark');
  const argv = process.argv.slice(2);
  const out = argv[0] && !CASES[argv[0]] ? argv.shift() : 'pcaps/redis';
  const names = argv.length ? argv : Object.keys(CASES);
  for (const name of names) {
    const port = PORTS[name];
    if (!port) throw new Error(`unknown case ${name} (cases: ${Object.keys(CASES).join(', ')})`);
    const server = await startRedis(port);
    const file = join(out, `${name}.pcap`);
    try {
      await capture(file, `tcp port ${port}`, () => CASES[name](port));
    } finally {
      await server.stop();
    }
    const n = execFileSync('tshark', ['-r', file, '-d', `tcp.port==${port},resp`, '-Y', 'resp', '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).length;
    console.log(`  tshark: ${n} frames with RESP`);
    if (n === 0) throw new Error(`${file}: tshark sees no RESP`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
