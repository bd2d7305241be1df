// npm run soak — the live agent under mixed HTTP/1, gRPC and PostgreSQL load for --minutes (issue 14 §5).
//
//   node bench/soak/run.mjs [--minutes 10] [--warmup-minutes 2] [--rates HTTP,GRPC,PG] [--fraction 0.85]
//                           [--step-seconds 15] [--svg FILE] [--out .tmp/soak-report.json] [--report-only]
//                           [--agent-node-arg ARG]... [--agent-nice N]
//   node bench/soak/run.mjs --plot-only .tmp/soak-report.json [--svg FILE]   (redraw the SVG of a kept report)
//
// On loopback, with the servers, the load generators and the agent on this machine's cores:
//   1. calibration (skipped with --rates): a ramp of --step-seconds steps at rising combined rates, split
//      40 % HTTP/1, 20 % gRPC, 40 % PostgreSQL, each step counted against a first agent; it stops at the
//      first step where a protocol loses a transaction or a generator cannot keep its rate (makes less
//      than 95 % of it) twice in a row (a failed step is run once more). The sustained rate is the last
//      clean step's; the soak runs at --fraction of it.
//   2. the soak: a fresh agent (empty data dir), all three generators for --minutes, the agent sampled
//      every 5 s (VmRSS and utime+stime from /proc, RSS, JS heap and drop counters from its /metrics);
//      then, after a drain, its flows counted through its API by protocol against what was made.
//   3. the report: .tmp/soak-report.json, an SVG of RSS and heap over time (docs/img/soak-rss.svg for a
//      run of 10 minutes or more, .tmp/soak-rss.svg otherwise), a summary on stdout. Exit 1 when a target
//      is missed (RSS flat within ±10 % after warm-up; every transaction captured; no interface drops),
//      unless --report-only.
// Needs root (libpcap on lo, initdb as postgres), wrk, PostgreSQL 15 (pgbench), a built dist/ (npm run soak
// builds it if needed). The agent runs from a copy of dist/ so a concurrent rebuild cannot change it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from '../../scripts/record/lib.mjs';
import { PGBIN } from '../../scripts/record/postgres/cluster.mjs';
import { startServers, drive, wrkPacing, PROTOCOLS, PORTS } from './load.mjs';
import { copyDist, startAgent, sampler, countFlows, metrics, metricFacts } from './agent.mjs';
import { memoryStats, cpuStats, compare, drops, heapFloors, targets, summaryText } from './report.mjs';
import { plotReport } from './svg.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? argv[i + 1] : dflt; };
const MINUTES = Number(opt('minutes', 10));
const WARMUP_SEC = Math.round(Number(opt('warmup-minutes', Math.min(2, MINUTES * 0.2))) * 60);
const FRACTION = Number(opt('fraction', 0.85));
const STEP_SEC = Number(opt('step-seconds', 15));
const OUT = join(root, opt('out', '.tmp/soak-report.json'));
const SVG = join(root, opt('svg', MINUTES >= 10 ? 'docs/img/soak-rss.svg' : '.tmp/soak-rss.svg'));
const REPORT_ONLY = argv.includes('--report-only');
const AGENT_NICE = Number(opt('agent-nice', 0));
const AGENT_NODE_ARGS = argv.flatMap((a, i) => (argv[i - 1] === '--agent-node-arg' ? [a] : []));
const SHARE = { http: 0.4, grpc: 0.2, postgres: 0.4 };
const STEPS = [1500, 2500, 3500, 4500, 5500, 6500, 7500, 9000, 11000];

const log = (s) => process.stderr.write(`soak: ${s}\n`);
const nowSec = () => Date.now() / 1000;
const split = (total) => Object.fromEntries(PROTOCOLS.map((p) => [p, Math.round(total * SHARE[p])]));

function preflight() {
  if (!(MINUTES > 0) || !(FRACTION > 0 && FRACTION <= 1)) { log('--minutes must be > 0 and --fraction in (0, 1]'); process.exit(2); }
  if (process.getuid?.() !== 0) { log('needs root (libpcap on lo, initdb as postgres)'); process.exit(2); }
  for (const tool of ['wrk', join(PGBIN, 'pgbench')]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) { log(`needs ${tool} (apt-get install wrk postgresql)`); process.exit(2); }
  }
}

/** One run of all three generators at `rates` against `agent`, counted; afterDrive() runs when the load has stopped. */
async function measure(rates, seconds, afterDrive = async () => {}) {
  const since = nowSec();
  const made = await drive(rates, seconds);
  const until = nowSec();
  await afterDrive();
  await sleep(3000); // the agent makes a completed exchange queryable within about a second
  const counted = await countFlows(Math.floor(since - 1), Math.ceil(until + 1));
  return { since, until, made, counted, perProtocol: compare(made, counted, seconds) };
}

async function calibrate(main) {
  const agent = await startAgent(main, { nodeArgs: AGENT_NODE_ARGS, nice: AGENT_NICE });
  const steps = [];
  try {
    for (let i = 0, retried = false; i < STEPS.length; i++) {
      const total = STEPS[i];
      const rates = split(total);
      const r = await measure(rates, STEP_SEC);
      const kept = Object.fromEntries(PROTOCOLS.map((p) => [p, r.perProtocol[p].made / (rates[p] * STEP_SEC)]));
      const lost = PROTOCOLS.filter((p) => r.perProtocol[p].lost > 0);
      const slow = PROTOCOLS.filter((p) => kept[p] < 0.95);
      const step = {
        offeredTotal: total, rates, perProtocol: r.perProtocol, generatorKept: kept,
        madeTotalPerSec: Math.round(PROTOCOLS.reduce((s, p) => s + r.perProtocol[p].made, 0) / STEP_SEC),
        clean: lost.length === 0 && slow.length === 0,
        why: [...lost.map((p) => `${p} lost ${r.perProtocol[p].lost}`), ...slow.map((p) => `${p} generator kept ${(kept[p] * 100).toFixed(0)} % of its rate`)].join('; ') || null,
      };
      steps.push(step);
      log(`calibration ${total}/s offered: made ${PROTOCOLS.map((p) => `${p} ${r.perProtocol[p].madePerSec}/s`).join(', ')}; ` +
        `captured ${PROTOCOLS.map((p) => `${p} ${r.perProtocol[p].captured}/${r.perProtocol[p].made}`).join(', ')}${step.why ? ` — ${step.why}` : ''}`);
      // A step that fails is run once more: on a shared machine one burst of other work can cost a
      // step (and one lost packet costs the rest of a gRPC connection), which is not this rate's limit.
      if (!step.clean && !retried) { retried = true; step.retried = true; i--; continue; }
      retried = false;
      if (!step.clean) break;
    }
  } finally {
    await agent.stop();
  }
  const best = steps.filter((s) => s.clean).at(-1);
  if (!best) throw new Error(`calibration: even ${STEPS[0]}/s was not sustained: ${steps[0].why}`);
  const rates = Object.fromEntries(PROTOCOLS.map((p) => [p, Math.round((FRACTION * best.perProtocol[p].made) / STEP_SEC)]));
  const first = steps.at(-1).clean ? undefined : steps.at(-1);
  return {
    stepSeconds: STEP_SEC, share: SHARE, steps, sustainedTotalPerSec: best.madeTotalPerSec,
    limit: first ? `${first.offeredTotal}/s offered: ${first.why}` : `none up to ${STEPS.at(-1)}/s offered`,
    fraction: FRACTION, rates,
  };
}

async function soak(main, rates) {
  mkdirSync(dirname(OUT), { recursive: true });
  const agent = await startAgent(main, { nodeArgs: AGENT_NODE_ARGS, nice: AGENT_NICE, logFile: join(dirname(OUT), 'soak-agent.log') });
  let samples = [], result, last;
  try {
    const s = sampler(agent.pid, 5000);
    log(`soak: ${MINUTES} min at ${PROTOCOLS.map((p) => `${p} ${rates[p]}/s`).join(', ')}; agent pid ${agent.pid}`);
    const progress = setInterval(() => {
      const x = s.samples.at(-1);
      if (x) log(`  ${(x.t / 60).toFixed(1)} min: VmRSS ${(x.vmRssBytes / 1e6).toFixed(0)} MB, heap ${(x.heapUsedBytes / 1e6).toFixed(0)} MB, agent ${x.agentCores.toFixed(2)} cores, others ${x.othersCores.toFixed(2)}, store ${x.storeFlows} flows`);
    }, 60000);
    // The sampler stops with the load: the drain and the counting afterwards are not the soak.
    const stopSampling = async () => { clearInterval(progress); if (!samples.length) samples = await s.stop(); };
    try {
      result = await measure(rates, MINUTES * 60, stopSampling);
    } finally {
      await stopSampling();
    }
    last = metricFacts(await metrics());
  } finally {
    await agent.stop();
  }
  return { agent, result, samples, last };
}

async function main() {
  const from = opt('plot-only');
  if (from) { // redraw the SVG of a kept report
    writeFileSync(SVG, plotReport(JSON.parse(readFileSync(join(root, from), 'utf8'))));
    log(`wrote ${SVG}`);
    return 0;
  }
  preflight();
  const date = new Date().toISOString();
  const dist = await copyDist();
  // What the agent under test was built from: the commit, and src/ files changed beside it, when dist/ was copied.
  const git = (...a) => spawnSync('git', a, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const build = { gitHead: git('rev-parse', 'HEAD'), distBuilt: dist.built, srcChanges: git('status', '--porcelain', 'src').split('\n').filter(Boolean) };
  const servers = await startServers();
  let report;
  try {
    const given = opt('rates');
    const calibration = given ? null : await calibrate(dist.main);
    const rates = given ? Object.fromEntries(given.split(',').map((x, i) => [PROTOCOLS[i], Number(x)])) : calibration.rates;
    if (calibration) log(`calibration: sustained ${calibration.sustainedTotalPerSec}/s combined (limit: ${calibration.limit}); soaking at ${FRACTION * 100} %`);
    const { agent, result, samples, last } = await soak(dist.main, rates);
    const rss = memoryStats(samples, 'vmRssBytes', WARMUP_SEC);
    const drop = drops(last);
    report = {
      command: `node bench/soak/run.mjs ${argv.join(' ')}`.trim(), date, host: { cores: spawnSync('nproc').stdout.toString().trim(), node: process.version },
      build,
      calibration,
      soak: {
        minutes: MINUTES, agentNice: AGENT_NICE, warmupSec: WARMUP_SEC, rates, ports: PORTS, agentArgs: agent.args.slice(AGENT_NODE_ARGS.length + 1), filter: agent.filter,
        wrk: { ...wrkPacing(rates.http), socketErrors: result.made.http.socketErrors, non2xx: result.made.http.non2xx },
        grpc: { errors: result.made.grpc.errors, behind: result.made.grpc.behind, firstError: result.made.grpc.firstError },
        pgbench: { failed: result.made.postgres.failed, scheduleLagMs: result.made.postgres.scheduleLagMs },
        perProtocol: result.perProtocol, counted: result.counted,
        cpu: cpuStats(samples, WARMUP_SEC), rss, rssFromMetrics: memoryStats(samples, 'rssBytes', WARMUP_SEC),
        heap: memoryStats(samples, 'heapUsedBytes', WARMUP_SEC), heapTotal: memoryStats(samples, 'heapTotalBytes', WARMUP_SEC),
        ring: memoryStats(samples, 'ringRssBytes', WARMUP_SEC), restRss: memoryStats(samples, 'restRssBytes', WARMUP_SEC),
        heapFloorPerMinute: heapFloors(samples), drops: drop,
        samples,
      },
    };
    report.targets = targets(rss, result.perProtocol, drop);
  } finally {
    await servers.stop();
    dist.remove();
  }
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(report, null, 2)}\n`);
  mkdirSync(dirname(SVG), { recursive: true });
  writeFileSync(SVG, plotReport(report));
  console.log(summaryText(report));
  log(`wrote ${OUT} and ${SVG}`);
  const missed = report.targets.filter((t) => !t.met);
  return missed.length && !REPORT_ONLY ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => {
  log(`FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
