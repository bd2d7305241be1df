// One fuzz worker thread: runs cases index = start, start + stride, … against dist/, writing the
// case it is on and when it began into shared memory so the main thread's watchdog can stop it if
// it hangs. Failures come back minimised, with the input to store as a regression fixture.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { getHeapStatistics } from 'node:v8';
import { CaptureBase } from './capture-cases.mjs';
import { buildDirect, caseId, planCase, toFixture } from './cases.mjs';
import { CAPTURE_MUTATIONS } from './capture-mutations.mjs';
import { expectedCaptureError, runCapture, runHpack, runSession } from './drive.mjs';
import { loadDist } from './mods.mjs';
import { minimizeCapture, minimizeDirect } from './minimize.mjs';

const w = workerData;
const mods = await loadDist(w.root);
const base = new CaptureBase(w.captures);
const dir = mkdtempSync(join(tmpdir(), `tapwire-fuzz-${process.pid}-${threadId}-`));
const tmp = join(dir, 'case.pcap');
const watch = new Float64Array(w.shared);
const slot = w.slot;

/** A throw's identity: its class and where it was thrown (first stack frame). */
export function signature(err) {
  if (!(err instanceof Error)) return `throw ${String(err).slice(0, 80)}`;
  // The first frame outside Node's own code (a Buffer method throwing names its caller).
  const frames = (err.stack ?? '').split('\n').filter((l) => l.trim().startsWith('at '));
  const frame = frames.find((l) => !/\(node:|at node:/.test(l)) ?? frames[0] ?? '';
  return `${err.name}: ${frame.trim().replace(/^at /, '').replace(/file:\/\/\S*\/(src|dist)\//, '$1/')}`;
}

/** Runs a direct case; returns undefined when it passed, else what went wrong. */
function direct(input) {
  try {
    const out = input.kind === 'hpack' ? runHpack(mods, input) : runSession(mods, input);
    if (out.violations?.['decoder.internal_error']) return { kind: 'internal_error', message: 'decoder.internal_error from record building', signature: 'internal_error' };
    return undefined;
  } catch (err) {
    return { kind: 'throw', message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined, signature: signature(err) };
  }
}

async function capture(bytes, opts) {
  writeFileSync(tmp, bytes);
  try {
    const out = await runCapture(mods, tmp, opts);
    if (out.violations['decoder.internal_error'] || out.thrown.length) {
      const t = out.thrown[0];
      const first = t?.stack?.split('\n')[0] ?? 'decoder.internal_error';
      const frame = t?.stack?.split('\n').find((l) => l.trim().startsWith('at ') && !/\(node:|at node:/.test(l)) ?? '';
      return { kind: 'internal_error', protocol: t?.protocol, message: first, stack: t?.stack, signature: `${first.split(':')[0]}: ${frame.trim().replace(/^at /, '').replace(/file:\/\/\S*\/(src|dist)\//, '$1/')}` };
    }
    return undefined;
  } catch (err) {
    if (expectedCaptureError(mods, err)) return undefined;
    return { kind: 'throw', message: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined, signature: signature(err) };
  }
}

/** Builds and runs case `c`; a throw while building the input is the harness's own bug. */
async function runCase(c, minimize) {
  try {
    return await runCaseInner(c, minimize);
  } catch (err) {
    return { ms: 0, failure: { kind: 'harness', message: `building the case failed: ${err?.message ?? err}`, stack: err?.stack, signature: 'harness' }, meta: {} };
  }
}

/** The time measured is the decode's: building the input (mutating a capture) is not counted. */
async function runCaseInner(c, minimize) {
  let failure, fixture, meta = {};
  let t0, size;
  if (c.decoder === 'capture') {
    const b = base.build(c);
    meta = { base: b.base, other: b.other };
    t0 = performance.now();
    const opts = { bodyLimit: b.bodyLimit, protos: b.protos, redact: b.redact };
    size = b.bytes.length;
    failure = await capture(b.bytes, opts);
    const ms = performance.now() - t0;
    if (failure && minimize) {
      const sig = failure.signature;
      const small = await minimizeCapture(b.bytes, async (x) => (await capture(x, opts))?.signature === sig);
      fixture = { pcap: small, ...opts };
    }
    return { ms, failure, fixture, meta, size };
  }
  const input = buildDirect(c, mods.HUFFMAN_CODES);
  size = input.kind === 'hpack' ? input.blocks.reduce((a, b) => a + b.length, 0) : input.steps.reduce((a, st) => a + (st.bytes?.length ?? 0), 0);
  t0 = performance.now();
  failure = direct(input);
  const ms = performance.now() - t0;
  if (failure && minimize) {
    const sig = failure.signature;
    fixture = toFixture(await minimizeDirect(input, (x) => direct(x)?.signature === sig));
  }
  return { ms, failure, fixture, meta, size };
}

const stats = { cases: 0, byDecoder: {}, byMutation: {}, msByDecoder: {}, maxMsByDecoder: {}, peakHeap: 0, slowest: [] };
const bump = (o, k, v = 1) => { o[k] = (o[k] ?? 0) + v; };

async function main() {
  if (w.repro) {
    const c = { index: -1, ...w.repro };
    const r = await runCase(c, false);
    parentPort.postMessage({ type: 'repro', id: caseId(c), ms: r.ms, failure: r.failure, meta: r.meta });
    return;
  }
  const mutations = Object.keys(CAPTURE_MUTATIONS);
  for (let i = w.start; i < w.end; i += w.stride) {
    const c = planCase(w.seed, i, mutations, w.only, w.captureShare);
    watch[slot * 2] = i;
    watch[slot * 2 + 1] = Date.now();
    const r = await runCase(c, w.minimize);
    watch[slot * 2 + 1] = 0;
    stats.cases++;
    const fam = c.decoder === 'capture' ? 'capture' : c.decoder;
    bump(stats.byDecoder, fam);
    bump(stats.byMutation, c.decoder === 'capture' ? `capture.${c.mutation}` : c.mutation);
    bump(stats.msByDecoder, fam, r.ms);
    if (r.ms > (stats.maxMsByDecoder[fam]?.ms ?? -1)) stats.maxMsByDecoder[fam] = { ms: Math.round(r.ms * 10) / 10, id: caseId(c) };
    // The bound grows with the input (megabyte bodies are generated too): base + perMbMs per MB,
    // a floor of 20 MB/s by default, which quadratic reading of a large message falls far below.
    const bound = (c.decoder === 'capture' ? w.bounds.captureMs : w.bounds.directMs) + w.bounds.perMbMs * ((r.size ?? 0) / 2 ** 20);
    let failure = r.failure;
    if (!failure && r.ms > bound) {
      // Over its time bound: run it twice more before calling it slow (a GC pause, the other
      // thread, a first compile); the fastest of the three counts.
      const times = [r.ms];
      for (let k = 0; k < 2 && Math.min(...times) > bound; k++) times.push((await runCase(c, false)).ms);
      if (Math.min(...times) > bound) failure = { kind: 'slow', message: `took ${times.map((t) => Math.round(t)).join(', ')} ms for ${((r.size ?? 0) / 2 ** 20).toFixed(1)} MB (bound ${Math.round(bound)} ms)`, signature: 'slow' };
    }
    if (failure) parentPort.postMessage({ type: 'failure', index: i, id: caseId(c), decoder: c.decoder, mutation: c.mutation, ms: r.ms, failure, fixture: failure.kind === 'slow' ? undefined : r.fixture, meta: r.meta });
    if (stats.cases % 200 === 0) {
      const h = getHeapStatistics().used_heap_size;
      if (h > stats.peakHeap) stats.peakHeap = h;
      parentPort.postMessage({ type: 'progress', stats });
    }
  }
  stats.peakHeap = Math.max(stats.peakHeap, getHeapStatistics().used_heap_size);
  parentPort.postMessage({ type: 'done', stats });
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
