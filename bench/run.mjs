// npm run bench: times tapwire on large recorded captures of real traffic, and tshark on the same
// files. Every figure comes from a fresh process (cold: the page cache is dropped first when
// running as root), so start-up is included, as a user would see it.
//
//   npm run bench                      all cases, tshark comparison, 1 GB RSS check
//   npm run bench -- --quick           100 MB cases only, no 1 GB file
//   npm run bench -- --no-tshark       skip tshark
//   npm run bench -- --runs 5          runs per figure (median reported)
//   npm run bench -- --only redis      one case, by its kind (http1, http1-small, grpc, pgbench, redis, mysql, tls)
//   npm run bench -- --against <ref>   also time the source at a git ref (built in bench/.cache),
//                                      runs interleaved with this source's, so noise hits both alike
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const noTshark = args.includes('--no-tshark');
const runs = Number(args[args.indexOf('--runs') + 1]) || 3;
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
const againstRef = args.includes('--against') ? args[args.indexOf('--against') + 1] : undefined;
const isRoot = process.getuid?.() === 0;

const CASES = [
  { name: 'HTTP/1 mix (wrk)', kind: 'http1', mb: 100, filter: 'http', record: ['bench/record.mjs', 'http1'] },
  { name: 'HTTP/1 small responses (wrk)', kind: 'http1-small', mb: 100, filter: 'http', record: ['bench/record.mjs', 'http1-small'] },
  // grpc-js load on port 18910 (bench/record-grpc.mjs); tshark needs to be told it is HTTP/2.
  { name: 'gRPC (grpc-js)', kind: 'grpc', mb: 50, filter: 'grpc', decodeAs: ['-d', 'tcp.port==18910,http2'], record: ['bench/record-grpc.mjs'] },
  // pgbench -M extended on port 18920 (bench/record-pg.mjs); tshark needs to be told it is PostgreSQL.
  { name: 'PostgreSQL (pgbench extended)', kind: 'pgbench', mb: 50, filter: 'pgsql', decodeAs: ['-d', 'tcp.port==18920,pgsql'], record: ['bench/record-pg.mjs'] },
  // redis-benchmark -P 16 on port 18930 (bench/record-redis.mjs); tshark needs to be told it is RESP.
  { name: 'Redis (redis-benchmark -P 16)', kind: 'redis', mb: 50, filter: 'resp', decodeAs: ['-d', 'tcp.port==18930,resp'], record: ['bench/record-redis.mjs'] },
  // mysql2 execute/query and mysqlslap on MariaDB, port 18940 (bench/record-mysql.mjs); tshark needs to be told it is MySQL.
  { name: 'MySQL (mysql2 + mysqlslap, MariaDB)', kind: 'mysql', mb: 50, filter: 'mysql', decodeAs: ['-d', 'tcp.port==18940,mysql'], record: ['bench/record-mysql.mjs'] },
  // node:https, one request per new connection (scripts/record/tls-load.mjs): handshakes decoded, content counted, nothing decrypted.
  { name: 'TLS handshakes (node:https)', kind: 'tls', mb: 50, filter: 'tls.handshake', record: ['scripts/record/tls-load.mjs'] },
].filter((c) => !only || c.kind === only);

/**
 * tshark in two modes. "records" is the command that made the conformance oracles: JSON for
 * every HTTP message, with headers and bodies, which is what tapwire's JSONL holds. "summary"
 * prints one line per HTTP packet: tshark's fastest way to decode the same file.
 */
const TSHARK = {
  records: (c) => ['-n', '-2', '-o', 'tcp.reassemble_out_of_order:TRUE', ...(c.decodeAs ?? []), '-Y', c.filter, '-T', 'json'],
  summary: (c) => ['-n', ...(c.decodeAs ?? []), '-Y', c.filter],
};

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** The cached capture for a case, recorded with its recorder command (`record`) when missing. */
function ensureCapture(kind, mb, record) {
  const file = join('bench', '.cache', `${kind}-${mb % 1024 === 0 ? `${mb / 1024}g` : `${mb}m`}.pcap`);
  if (existsSync(file) && statSync(file).size >= mb * 1048576) return file;
  if (!isRoot || !have('tcpdump') || !have('wrk')) {
    console.error(`bench: ${file} is missing and cannot be recorded here (needs root, tcpdump and wrk: run .ci/run's apt line, then npm run bench as root)`);
    process.exit(2);
  }
  execFileSync(process.execPath, [...record, '--min-mb', String(mb), '--out', file], { stdio: 'inherit' });
  return file;
}

/**
 * CPU seconds (user + system) of the children this process has waited for, so far: cutime and
 * cstime of /proc/self/stat (proc(5)), in clock ticks of 1/100 s. On a machine shared with other
 * work, wall times stretch with the load; CPU seconds much less, so both ratios are reported.
 */
function childCpu() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / 100; // fields 16 and 17, counted from field 3 (state)
  } catch {
    return NaN;
  }
}

function dropCaches() {
  if (!isRoot) return;
  try {
    execFileSync('sh', ['-c', 'sync; echo 1 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
  } catch { /* not permitted in this container: runs are warm */ }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * The source at a git ref, built once into bench/.cache/against-<sha>: its files from `git archive`,
 * this checkout's node_modules linked in (the same dependencies unless package.json changed
 * between the two: say so when comparing across such a change), then tsc.
 */
function prepareAgainst(ref) {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { encoding: 'utf8' }).trim();
  const dir = join('bench', '.cache', `against-${sha.slice(0, 12)}`);
  if (!existsSync(join(dir, 'dist', 'cli', 'main.js'))) {
    rmSync(dir, { recursive: true, force: true });
    execFileSync('sh', ['-c', `mkdir -p "${dir}" && git archive ${sha} | tar -x -C "${dir}" && ln -s "${process.cwd()}/node_modules" "${dir}/node_modules"`]);
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', join(dir, 'tsconfig.json')], { stdio: 'inherit' });
  }
  return { ref, sha, dir };
}
const against = againstRef ? prepareAgainst(againstRef) : undefined;

/** One cold `tapwire analyze --format jsonl > /dev/null` process; wall time measured outside. */
function tapwire(file, extra = [], root = '.') {
  const stats = join(tmpdir(), `tapwire-bench-${process.pid}.json`);
  dropCaches();
  const c0 = childCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'analyze', file, '--format', 'jsonl', '--no-progress', '--stats', stats, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 24,
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = childCpu() - c0;
  if (r.status !== 0) throw new Error(`tapwire failed on ${file}: ${r.stderr}`);
  const s = JSON.parse(readFileSync(stats, 'utf8'));
  rmSync(stats, { force: true });
  return { wall, cpu, ...s };
}

/** The pipeline alone, in a fresh process: records are built (bodies, redaction) but not serialised. */
function pipelineOnly(file, root = '.') {
  dropCaches();
  const r = spawnSync(process.execPath, [join(root, 'bench/pipeline-only.mjs'), file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** `verify` alone (all detectors) over the records of a capture, in a fresh process. */
function verifyOnly(file) {
  const r = spawnSync(process.execPath, ['bench/verify-only.mjs', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

function tshark(file, mode, c) {
  dropCaches();
  const c0 = childCpu();
  const t0 = process.hrtime.bigint();
  const r = spawnSync('tshark', ['-r', file, ...TSHARK[mode](c)], { stdio: ['ignore', 'ignore', 'ignore'] });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`tshark failed on ${file}`);
  return { wall, cpu: childCpu() - c0 };
}

const mbps = (bytes, s) => bytes / 1e6 / s;
const rows = [];
for (const c of CASES) {
  const file = ensureCapture(c.kind, c.mb, c.record);
  const size = statSync(file).size;
  const t = [], tb = [];
  for (let i = 0; i < runs; i++) {
    t.push(tapwire(file));
    if (against) tb.push(tapwire(file, [], against.dir));
  }
  const wall = median(t.map((x) => x.wall));
  const last = t.at(-1);
  const p = [], pb = [];
  for (let i = 0; i < runs; i++) {
    p.push(pipelineOnly(file));
    if (against) pb.push(pipelineOnly(file, against.dir));
  }
  const pipe = median(p.map((x) => x.seconds));
  const before = against ? { cliMBs: mbps(size, median(tb.map((x) => x.wall))), pipelineMBs: mbps(size, median(pb.map((x) => x.seconds))) } : undefined;
  const v = [];
  for (let i = 0; i < runs; i++) v.push(verifyOnly(file));
  const verifySec = median(v.map((x) => x.seconds));
  let tsh, tshSum, tshCpu;
  if (!noTshark && have('tshark')) {
    ({ wall: tsh, cpu: tshCpu } = tshark(file, 'records', c));
    tshSum = tshark(file, 'summary', c).wall;
  }
  const cliCpu = median(t.map((x) => x.cpu));
  rows.push({
    case: c.name, file, mb: size / 1e6, packets: last.packets, flows: last.flows,
    pipelineMBs: mbps(size, pipe), pipelineFlowsPerSec: median(p.map((x) => x.flows / x.seconds)), cliMBs: mbps(size, wall), packetsPerSec: last.packets / wall, flowsPerSec: last.flows / wall,
    peakRssMB: Math.max(...t.map((x) => x.maxRssBytes)) / 1e6,
    tsharkMBs: tsh ? mbps(size, tsh) : undefined, ratio: tsh ? tsh / wall : undefined,
    tsharkSummaryMBs: tshSum ? mbps(size, tshSum) : undefined, ratioSummary: tshSum ? tshSum / wall : undefined, wallSec: wall,
    cliCpuSec: cliCpu, tsharkCpuSec: tshCpu, ratioCpu: tshCpu ? tshCpu / cliCpu : undefined,
    verifySec, verifyFlowsPerSec: v[0].flows / verifySec, before,
  });
  console.error(`bench: ${c.name}: done`);
}

if (!quick && !only) {
  const file = ensureCapture('http1', 1024, ['bench/record.mjs', 'http1']);
  const r = tapwire(file);
  rows.push({
    case: 'HTTP/1 mix, 1 GB (RSS check)', file, mb: statSync(file).size / 1e6, packets: r.packets, flows: r.flows,
    cliMBs: mbps(statSync(file).size, r.wall), packetsPerSec: r.packets / r.wall, flowsPerSec: r.flows / r.wall,
    peakRssMB: r.maxRssBytes / 1e6, wallSec: r.wall,
  });
}

const f = (x, d = 1) => (x === undefined ? '–' : x.toFixed(d));
const lines = [
  `| case | size MB | packets | flows | pipeline MB/s | pipeline flows/s | CLI → JSONL MB/s | packets/s | flows/s | peak RSS MB | tshark records MB/s | × | tshark summary MB/s | × | CLI CPU s | tshark records CPU s | × CPU | verify s | verify flows/s |`,
  `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
  ...rows.map((r) => `| ${r.case} | ${f(r.mb)} | ${r.packets} | ${r.flows} | ${f(r.pipelineMBs)} | ${r.pipelineFlowsPerSec === undefined ? '–' : Math.round(r.pipelineFlowsPerSec)} | ${f(r.cliMBs)} | ${Math.round(r.packetsPerSec)} | ${Math.round(r.flowsPerSec)} | ${f(r.peakRssMB)} | ${f(r.tsharkMBs, 2)} | ${f(r.ratio, 1)} | ${f(r.tsharkSummaryMBs, 1)} | ${f(r.ratioSummary, 1)} | ${f(r.cliCpuSec, 2)} | ${f(r.tsharkCpuSec, 2)} | ${f(r.ratioCpu, 1)} | ${f(r.verifySec, 2)} | ${r.verifyFlowsPerSec === undefined ? '–' : Math.round(r.verifyFlowsPerSec)} |`),
];
console.log(lines.join('\n'));
if (against) {
  const pct = (a, b) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)} %`;
  console.log([
    '', `Against ${against.ref} (${against.sha.slice(0, 12)}), runs interleaved with this source's:`, '',
    '| case | pipeline MB/s before | after | change | CLI MB/s before | after | change |', '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.filter((r) => r.before).map((r) => `| ${r.case} | ${f(r.before.pipelineMBs)} | ${f(r.pipelineMBs)} | ${pct(r.pipelineMBs, r.before.pipelineMBs)} | ${f(r.before.cliMBs)} | ${f(r.cliMBs)} | ${pct(r.cliMBs, r.before.cliMBs)} |`),
  ].join('\n'));
}
console.log(`\nnode ${process.version}, ${runs} runs per figure (median), page cache ${isRoot ? 'dropped before each run' : 'warm (not root)'}; `
  + 'pipeline = records built (bodies, redaction) in a fresh process, not serialised (flows/s: records per second of it); CLI = whole `tapwire analyze --format jsonl > /dev/null` process; '
  + `tshark records = tshark ${TSHARK.records({ filter: 'http|grpc' }).join(' ')}; tshark summary = tshark ${TSHARK.summary({ filter: 'http|grpc' }).join(' ')} (gRPC with -d tcp.port==18910,http2, PostgreSQL with -d tcp.port==18920,pgsql, Redis with -d tcp.port==18930,resp -Y resp, MySQL with -d tcp.port==18940,mysql -Y mysql); × = tshark seconds / tapwire CLI seconds; CPU = user + system seconds of the process (× CPU: tshark records' over the CLI's, median CLI run); verify = every built-in detector and causal grouping over the capture's records, after decoding.`);
writeFileSync(join('bench', '.cache', 'results.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, against: against && { ref: against.ref, sha: against.sha }, rows }, null, 2));
