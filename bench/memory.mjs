// npm run bench:memory: peak RSS of `tapwire analyze` (and `verify`) on a 1 GB capture (issue 14 §4:
// a 1 GB capture is analysed in at most 256 MB).
//
//   npm run bench:memory                     build bench/.cache/mix-1g.pcap if missing, then measure
//   npm run bench:memory -- --min-mb 2048    a bigger file (bench/.cache/mix-2g.pcap)
//   npm run bench:memory -- --no-verify      analyze only
//
// The capture is the project's recorded traffic (every pcap under pcaps/ tracked by git: HTTP/1 with
// large bodies, HTTP/2, gRPC, PostgreSQL, the demo's services) replicated until it reaches the size.
// Each round holds one copy of every file, all starting together and merged in time order, so
// connections of different files overlap as on a busy host; rounds follow one another. Each copy
// gets its own addresses (the second and third octets of IPv4, two bytes of IPv6 XORed with its
// copy number), so no two copies share a connection, and the IPv4 header checksum is recomputed.
// Ports, sequence numbers and payloads are untouched: the decoded content is the recorded one.
//
// Peak RSS is the kernel's high-water mark (VmHWM of /proc/<pid>/status, polled, and
// /usr/bin/time -v's "Maximum resident set size" where it exists); MB/s is file bytes / wall s.
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const minMb = Number(opt('--min-mb', 1024));
const noVerify = args.includes('--no-verify');
const BOUND_MB = 256;
const out = join('bench', '.cache', `mix-${minMb % 1024 === 0 ? `${minMb / 1024}g` : `${minMb}m`}.pcap`);

/** The recorded captures: git's list of pcaps/ (so a half-recorded new file is not picked up). */
function sources() {
  let files;
  try {
    files = execFileSync('git', ['ls-files', 'pcaps'], { encoding: 'utf8' }).split('\n');
  } catch {
    const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    files = walk('pcaps');
  }
  return files.filter((f) => f.endsWith('.pcap')).sort();
}

/** A classic little-endian microsecond pcap on Ethernet, as packets {off,len,t}; else undefined. */
function parse(file) {
  const b = readFileSync(file);
  if (b.length < 24 || b.readUInt32LE(0) !== 0xa1b2c3d4 || b.readUInt32LE(20) !== 1) return undefined;
  const pkts = [];
  for (let p = 24; p + 16 <= b.length;) {
    const incl = b.readUInt32LE(p + 8);
    if (p + 16 + incl > b.length) break;
    pkts.push({ off: p, len: 16 + incl, t: b.readUInt32LE(p) + b.readUInt32LE(p + 4) / 1e6 });
    p += 16 + incl;
  }
  if (pkts.length === 0) return undefined;
  return { file, b, pkts, t0: pkts[0].t, dur: pkts.at(-1).t - pkts[0].t };
}

function ipv4Checksum(buf, o) {
  buf.writeUInt16BE(0, o + 10);
  const ihl = (buf[o] & 15) * 4;
  let s = 0;
  for (let i = 0; i < ihl; i += 2) s += buf.readUInt16BE(o + i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  buf.writeUInt16BE(~s & 0xffff, o + 10);
}

/** Rewrites one copied packet record (at `o` in `buf`) for copy number `n`, at capture time `t`. */
function rewrite(buf, o, n, t) {
  const sec = Math.floor(t);
  buf.writeUInt32LE(sec, o);
  buf.writeUInt32LE(Math.min(999_999, Math.round((t - sec) * 1e6)), o + 4);
  const e = o + 16;
  let l3 = e + 14, type = buf.readUInt16BE(e + 12);
  if (type === 0x8100) { type = buf.readUInt16BE(e + 16); l3 += 4; }
  const hi = (n >> 8) & 0xff, lo = n & 0xff;
  if (type === 0x0800 && (buf[l3] >> 4) === 4) {
    for (const a of [l3 + 12, l3 + 16]) { buf[a + 1] ^= hi; buf[a + 2] ^= lo; }
    ipv4Checksum(buf, l3);
  } else if (type === 0x86dd) {
    for (const a of [l3 + 8, l3 + 24]) { buf[a + 12] ^= hi; buf[a + 13] ^= lo; }
  }
}

function build() {
  if (existsSync(out) && statSync(out).size >= minMb * 1048576) {
    console.error(`bench:memory: reusing ${out} (${(statSync(out).size / 1e6).toFixed(0)} MB)`);
    return;
  }
  const caps = sources().map(parse).filter(Boolean);
  if (caps.length === 0) throw new Error('no Ethernet pcap under pcaps/');
  const roundBytes = caps.reduce((s, c) => s + c.pkts.reduce((x, p) => x + p.len, 0), 0);
  // Rounds a second apart after the longest file: each round's connections overlap each other,
  // and those a file leaves open (recorded mid-stream) linger into the next rounds until idle.
  const roundSec = Math.ceil(Math.max(...caps.map((c) => c.dur))) + 1;
  const tmp = `${out}.tmp`;
  const fd = openSync(tmp, 'w');
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0); header.writeUInt16LE(2, 4); header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16); header.writeUInt32LE(1, 20);
  writeSync(fd, header);
  let size = 24, round = 0, copy = 0;
  const base = 1_767_225_600; // 2026-01-01T00:00:00Z
  const t0 = Date.now();
  while (size < minMb * 1048576) {
    const start = base + round * roundSec;
    const all = [];
    for (const c of caps) {
      copy++;
      if (copy > 0xffff) throw new Error('more copies than distinct addresses: raise the octets used');
      for (const p of c.pkts) all.push({ c, p, n: copy, t: start + (p.t - c.t0) });
    }
    all.sort((x, y) => x.t - y.t);
    const chunk = Buffer.allocUnsafe(roundBytes);
    let o = 0;
    for (const { c, p, n, t } of all) {
      c.b.copy(chunk, o, p.off, p.off + p.len);
      rewrite(chunk, o, n, t);
      o += p.len;
    }
    writeSync(fd, chunk, 0, o);
    size += o;
    round++;
  }
  closeSync(fd);
  renameSync(tmp, out);
  console.error(`bench:memory: built ${out}: ${(size / 1e6).toFixed(0)} MB, ${round} rounds of ${caps.length} captures (${roundSec} s apart), ${copy} copies, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Runs `node dist/cli/main.js <argv>` with stdout to /dev/null; peak RSS, wall seconds. */
function measure(argv) {
  const useTime = existsSync('/usr/bin/time');
  const cmd = useTime ? '/usr/bin/time' : process.execPath;
  const full = useTime ? ['-v', process.execPath, 'dist/cli/main.js', ...argv] : ['dist/cli/main.js', ...argv];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, full, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    // VmHWM of the node process itself (time's child when time runs it), polled.
    let hwm = 0;
    const poll = setInterval(() => {
      try {
        const pids = useTime ? readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/) : [String(child.pid)];
        for (const pid of pids.filter(Boolean)) {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
          if (m) hwm = Math.max(hwm, Number(m[1]) * 1024);
        }
      } catch { /* exited between the reads */ }
    }, 50);
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(poll);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const rss = Math.max(hwm, m ? Number(m[1]) * 1024 : 0);
      resolve({ code, wall, rss, stderr: stderr.split('\n').filter((l) => l.startsWith('tapwire')).join('\n') });
    });
  });
}

async function main() {
  build();
  const bytes = statSync(out).size;
  const rows = [];
  const runs = [['analyze', ['analyze', out, '--format', 'jsonl', '--no-progress']]];
  if (!noVerify) runs.push(['verify', ['verify', out, '--no-progress']]);
  for (const [name, argv] of runs) {
    const r = await measure(argv);
    // verify exits 1 on a FAIL verdict and 3 when inconclusive: both are results, not errors.
    if (![0, 1, 3].includes(r.code)) throw new Error(`${name} exited ${r.code}: ${r.stderr}`);
    rows.push({ name, ...r });
    console.error(`bench:memory: ${name}: ${r.stderr}`);
  }
  const mb = (x) => (x / 1e6).toFixed(1);
  console.log(`| command | file MB | peak RSS MB | ≤ ${BOUND_MB} MiB | wall s | MB/s |`);
  console.log('|---|---:|---:|:-:|---:|---:|');
  for (const r of rows) {
    console.log(`| tapwire ${r.name} | ${mb(bytes)} | ${mb(r.rss)} | ${r.rss <= BOUND_MB * 1048576 ? 'yes' : 'NO'} | ${r.wall.toFixed(1)} | ${mb(bytes / r.wall)} |`);
  }
  console.log(`\nnode ${process.version}, ${new Date().toISOString()}, ${out}; stdout to /dev/null; peak RSS = VmHWM (and /usr/bin/time -v).`);
}

main().catch((e) => {
  console.error(`bench:memory: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
