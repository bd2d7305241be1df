// The soak's figures and targets (bench/soak/run.mjs): memory statistics after warm-up, CPU, captured
// against made per protocol, drops; and the one-screen summary printed at the end.
import { PROTOCOLS } from './load.mjs';

const MB = 1e6;
const round = (n, d = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : null);
const mean = (a) => a.reduce((s, x) => s + x, 0) / a.length;

/** Least-squares slope of ys over xs. */
function slope(xs, ys) {
  const mx = mean(xs), my = mean(ys);
  let num = 0, den = 0;
  for (let i = 0; i < xs.length; i++) { num += (xs[i] - mx) * (ys[i] - my); den += (xs[i] - mx) ** 2; }
  return den ? num / den : 0;
}

/**
 * min/max/mean of one series (MB) after warm-up, and its drift: how far each extreme is from the mean
 * (the ±10 % target), the least-squares trend over the post-warm-up window, and the mean of its last
 * minute against the mean of its first minute.
 */
export function memoryStats(samples, key, warmupSec) {
  const after = samples.filter((s) => s.t >= warmupSec && Number.isFinite(s[key]));
  if (after.length < 2) return null;
  const t = after.map((s) => s.t), v = after.map((s) => s[key] / MB);
  const m = mean(v), lo = Math.min(...v), hi = Math.max(...v);
  const span = (t.at(-1) - t[0]) / 60;
  const trend = slope(t, v) * 60; // MB per minute
  const firstMin = mean(v.filter((_, i) => t[i] < t[0] + 60)), lastMin = mean(v.filter((_, i) => t[i] > t.at(-1) - 60));
  return {
    samples: after.length, fromSec: t[0], toSec: t.at(-1),
    minMB: round(lo), maxMB: round(hi), meanMB: round(m),
    belowMeanPct: round((1 - lo / m) * 100), aboveMeanPct: round((hi / m - 1) * 100),
    trendMBPerMin: round(trend, 2), trendOverWindowPct: round(((trend * span) / m) * 100),
    firstMinuteMB: round(firstMin), lastMinuteMB: round(lastMin), firstToLastPct: round((lastMin / firstMin - 1) * 100),
  };
}

/**
 * The lowest heap used in each minute (MB): what survives the collections, where a leak would show
 * as a rising floor while the sawtooth above it is garbage waiting for the next major GC.
 */
export function heapFloors(samples) {
  const out = [];
  for (const s of samples) {
    if (!Number.isFinite(s.heapUsedBytes)) continue;
    const m = Math.floor(s.t / 60);
    out[m] = Math.min(out[m] ?? Infinity, round(s.heapUsedBytes / MB));
  }
  return [...out].map((v, m) => ({ minute: m, heapFloorMB: v ?? null }));
}

/** Mean agent CPU in cores (from /proc utime+stime) over the whole run and after warm-up. */
export function cpuStats(samples, warmupSec) {
  const first = samples[0], last = samples.at(-1);
  const after = samples.filter((s) => s.t >= warmupSec);
  const w0 = after[0];
  const cores = (a, b) => (a && b && b.t > a.t ? round((b.cpuSeconds - a.cpuSeconds) / (b.t - a.t), 2) : null);
  const per = samples.slice(1).map((s) => s.agentCores).filter(Number.isFinite);
  return {
    agentCoresMean: cores(first, last), agentCoresAfterWarmup: cores(w0, last),
    agentCoresMax5s: round(Math.max(...per), 2),
    agentRunqueueWaitMean: round(mean(samples.slice(1).map((s) => s.agentRunqueueWait).filter(Number.isFinite)), 2), // s/s runnable without a CPU agentCpuSeconds: round(last.cpuSeconds - first.cpuSeconds),
    othersCoresMean: round(mean(samples.slice(1).map((s) => s.othersCores).filter(Number.isFinite)), 2), // other users of the machine
    loadCoresMean: round(mean(samples.slice(1).map((s) => s.loadCores).filter(Number.isFinite)), 2), // servers, generators, postgres
    machineBusyMean: round(mean(samples.slice(1).map((s) => s.machineBusy).filter(Number.isFinite)) * 100), // % of all cores, other tenants included
  };
}

/** Captured against made per protocol. HTTP may show more captured than made: wrk does not count the requests in flight when it stops. */
export function compare(made, counted, seconds) {
  const out = {};
  for (const p of PROTOCOLS) {
    const m = made[p].made, c = counted[p];
    out[p] = {
      made: m, captured: c, lost: Math.max(0, m - c), extra: Math.max(0, c - m),
      incomplete: counted.incomplete[p] ?? 0, madePerSec: round(m / seconds, 0),
    };
  }
  return out;
}

/** The drop counters the agent exposes: interface drops, violations, and packets captured against packets decoded. */
export function drops(lastFacts) {
  return {
    interfaceDropped: lastFacts.interfaceDropped ?? null,
    violations: lastFacts.violations ?? {},
    violationsTotal: Object.values(lastFacts.violations ?? {}).reduce((a, b) => a + b, 0),
    capturePackets: lastFacts.capturePackets ?? null,
    pipelinePackets: lastFacts.pipelinePackets ?? null,
    flowsTotal: lastFacts.flowsTotal ?? {},
  };
}

/** The targets: RSS flat within ±10 % after warm-up; every protocol's transactions captured; no interface drops. */
export function targets(rss, perProtocol, drop) {
  const t = [];
  t.push({
    target: 'RSS flat within ±10 % of its mean after warm-up (VmRSS)',
    met: !!rss && rss.belowMeanPct <= 10 && rss.aboveMeanPct <= 10 && Math.abs(rss.firstToLastPct) <= 10,
    detail: rss ? `${rss.minMB}–${rss.maxMB} MB, mean ${rss.meanMB}; −${rss.belowMeanPct} % / +${rss.aboveMeanPct} %; first→last minute ${rss.firstToLastPct} %` : 'too few samples',
  });
  for (const p of PROTOCOLS) {
    const r = perProtocol[p];
    t.push({ target: `${p}: transactions captured = made`, met: r.lost === 0, detail: `made ${r.made}, captured ${r.captured}, lost ${r.lost}, extra ${r.extra}, incomplete ${r.incomplete}` });
  }
  t.push({ target: 'no interface drops', met: !drop.interfaceDropped, detail: `rx_dropped ${drop.interfaceDropped}` });
  return t;
}

export function summaryText(report) {
  const s = report.soak;
  const lines = [
    `soak: ${report.command} (${report.date})`,
    `rates (made/s): ${PROTOCOLS.map((p) => `${p} ${s.perProtocol[p].madePerSec}`).join(', ')}; offered ${PROTOCOLS.map((p) => `${p} ${s.rates[p]}`).join(', ')}`,
    `agent CPU: ${s.cpu.agentCoresAfterWarmup} cores after warm-up (whole run ${s.cpu.agentCoresMean}, max 5 s ${s.cpu.agentCoresMax5s}; waiting for a CPU ${s.cpu.agentRunqueueWaitMean} s/s); servers+generators ${s.cpu.loadCoresMean} cores; other processes on the machine ${s.cpu.othersCoresMean} cores; machine ${s.cpu.machineBusyMean} % busy (all processes)`,
    s.rss && `RSS (VmRSS) after ${s.warmupSec} s warm-up: ${s.rss.minMB}–${s.rss.maxMB} MB, mean ${s.rss.meanMB}, trend ${s.rss.trendMBPerMin} MB/min (${s.rss.trendOverWindowPct} % over the window), first→last minute ${s.rss.firstMinuteMB}→${s.rss.lastMinuteMB} MB (${s.rss.firstToLastPct} %)`,
    s.heap && `heap used after warm-up: ${s.heap.minMB}–${s.heap.maxMB} MB, mean ${s.heap.meanMB}, first→last minute ${s.heap.firstMinuteMB}→${s.heap.lastMinuteMB} MB; heap total ${s.heapTotal?.minMB}–${s.heapTotal?.maxMB} MB`,
    s.ring && `RSS parts after warm-up: libpcap ring ${s.ring.minMB}–${s.ring.maxMB} MB; V8 heap total ${s.heapTotal?.minMB}–${s.heapTotal?.maxMB} MB; the rest ${s.restRss?.minMB}–${s.restRss?.maxMB} MB`,
    s.heapFloorPerMinute && `heap floor per minute (lowest heap used, MB): ${s.heapFloorPerMinute.map((x) => x.heapFloorMB).join(', ')}`,
    ...PROTOCOLS.map((p) => { const r = s.perProtocol[p]; return `${p}: made ${r.made}, captured ${r.captured}, lost ${r.lost}, extra ${r.extra}, incomplete ${r.incomplete}`; }),
    `drops: interface ${s.drops.interfaceDropped}, violations ${s.drops.violationsTotal} ${JSON.stringify(s.drops.violations)}`,
    ...report.targets.map((t) => `${t.met ? 'MET    ' : 'MISSED '} ${t.target}: ${t.detail}`),
  ];
  return lines.filter(Boolean).join('\n');
}
