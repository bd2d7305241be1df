// npm run loss: exact pairing under loss and reordering (issue 14 §3).
//
//   node bench/loss/run.mjs [--seeds N] [--only http|http2|grpc|postgres] [--rate 0.01] [--no-reorder]
//                           [--reorder-rate 0.02] [--extra] [--files a.pcap,b.pcap] [--dump DIR]
//                           [--max-dumps N] [--out FILE] [--report-only] [--quiet]
//
// For each capture (pcaps/loss/*.pcap; --extra adds pcaps/http1, http2, grpc, postgres), decode it
// clean, then for each seed drop TCP data segments at each loss rate (1 % and 5 %), and separately
// delay data segments past a few later ones (reordering, no loss; once never past a packet of the
// other direction, once also past the peer's bare ACKs), decode the mutated packet list in
// memory with the original frame numbers, and judge every transaction against the clean run
// (evaluate.mjs says how). Prints a table per protocol × mutation, writes .tmp/loss-report.json,
// and exits 1 when a target is missed (--report-only: always 0):
//   untouched exact: HTTP/1.x and PostgreSQL ≥ 99.9 %; HTTP/2 and gRPC ≥ 99 % at 1 % loss and under
//     reordering, ≥ 95 % at 5 % loss;
//   every touched transaction marked incomplete with a reason (no unmarked);
//   no mismatched pairs.
// --dump DIR writes, for mismatched pairs, untouched-not-exact and touched-unmarked transactions, the
// mutated capture of that connection (DIR/<capture>-<mutation>-s<seed>-<port>.pcap) and a JSON
// explanation beside it (the packets dropped or moved, the clean and the mutated record).
import { mkdirSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { readPackets, http2FrameMap, hasHttp2, writePcap } from './capture.mjs';
import { dropSegments, reorderSegments } from './mutate.mjs';
import { decodePackets, loadEchoProtos, mismatch } from './records.mjs';
import { evaluate, tally, addTally } from './evaluate.mjs';

export const PROTOS = ['scripts/record/loss/echo.proto', 'pcaps/grpc/shop.proto'];
export const EXTRA_DIRS = ['pcaps/http1', 'pcaps/http2', 'pcaps/grpc', 'pcaps/postgres'];

/** The exact-percentage target of a protocol under a mutation (rate 0: reordering). */
export function target(protocol, rate) {
  if (protocol === 'http' || protocol === 'postgres') return 99.9;
  return rate > 0.01 ? 95 : 99;
}

export function parseArgs(argv) {
  const o = { seeds: 8, rates: [0.01, 0.05], reorder: true, reorderRate: 0.02, extra: false, files: undefined,
    dump: undefined, maxDumps: 25, out: '.tmp/loss-report.json', reportOnly: false, only: undefined, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => { const x = argv[++i]; if (x === undefined) throw new Error(`${a} needs a value`); return x; };
    if (a === '--seeds') o.seeds = Number(v());
    else if (a === '--rate') o.rates = v().split(',').map(Number);
    else if (a === '--only') o.only = v();
    else if (a === '--no-reorder') o.reorder = false;
    else if (a === '--no-loss') o.rates = [];
    else if (a === '--reorder-rate') o.reorderRate = Number(v());
    else if (a === '--extra') o.extra = true;
    else if (a === '--files') o.files = v().split(',');
    else if (a === '--dump') o.dump = v();
    else if (a === '--max-dumps') o.maxDumps = Number(v());
    else if (a === '--out') o.out = v();
    else if (a === '--report-only') o.reportOnly = true;
    else if (a === '--quiet') o.quiet = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.seeds >= 1)) throw new Error('--seeds must be ≥ 1');
  return o;
}

const pcapsIn = (dir) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.pcap')).sort().map((f) => join(dir, f)) : []);
const modeName = (m) => (m.kind === 'loss' ? `loss ${(m.rate * 100).toFixed(m.rate < 0.01 ? 1 : 0)}%`
  : `reorder ${(m.rate * 100).toFixed(0)}%${m.pastAcks ? ' past ACK' : ''}`);
const seedOf = (file, m, s) => {
  let h = 2166136261;
  // both reorder variants (pastAcks or not) take the same draws
  for (const ch of `${basename(file)}|${m.kind}|${m.rate}|${s}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return h;
};

/** Load a capture and decode it clean. */
export async function loadCapture(file, protos) {
  const entries = await readPackets(file);
  const records = decodePackets(entries, protos);
  const frameMap = hasHttp2(entries) ? http2FrameMap(entries) : new Map();
  const dataFrames = new Map();
  for (const e of entries) if (e.tcp?.len > 0) dataFrames.set(e.packet.frame, { key: e.tcp.key, from: e.tcp.from });
  return { file, entries, records, frameMap, dataFrames, protos,
    cleanIncomplete: records.filter((r) => r.incomplete).length, cleanMismatched: records.filter((r) => mismatch(r)).length };
}

/**
 * Run every mutation and seed over the loaded captures. Returns { results: {mode: {protocol: tally}},
 * perCapture: {mode: {file: {protocol: tally}}}, cases: [{file, mode, seed, mutation, case}], modes }
 * (cases capped at maxDumps per capture × mutation × kind; all are counted in the tallies).
 */
export function runAll(captures, o, log = () => {}) {
  const modes = [...o.rates.map((rate) => ({ kind: 'loss', rate })),
    ...(o.reorder ? [{ kind: 'reorder', rate: o.reorderRate, pastAcks: false }, { kind: 'reorder', rate: o.reorderRate, pastAcks: true }] : [])];
  const results = {};
  const perCapture = {};
  const cases = [];
  for (const m of modes) {
    const name = modeName(m);
    results[name] = {};
    perCapture[name] = {};
    for (const cap of captures) {
      const mine = (perCapture[name][cap.file] = {});
      const kept = {};
      for (let s = 1; s <= o.seeds; s++) {
        const seed = seedOf(cap.file, m, s);
        const mutation = m.kind === 'loss'
          ? dropSegments(cap.entries, m.rate, seed)
          : { ...reorderSegments(cap.entries, m.rate, seed, { pastAcks: m.pastAcks }), dropped: [] };
        const r = evaluate(cap, mutation);
        for (const [p, t] of Object.entries(r.byProtocol)) {
          if (o.only && p !== o.only) continue;
          addTally(results[name][p] ??= tally(), t);
          addTally(mine[p] ??= tally(), t);
        }
        for (const c of r.cases) {
          if (o.only && (c.clean ?? c.mutated).protocol !== o.only) continue;
          const kind = `${c.kind}${c.hpack ? '-hpack' : ''}`;
          if ((kept[kind] ?? 0) >= o.maxDumps) continue;
          kept[kind] = (kept[kind] ?? 0) + 1;
          cases.push({ file: cap.file, mode: name, seed, mutation, case: c });
        }
      }
      log(`${name} ${cap.file}: ${o.seeds} seeds`);
    }
  }
  return { results, perCapture, cases, modes: modes.map((m) => ({ name: modeName(m), ...m })) };
}

/** Targets met? Adds exactPct/target/pass to each tally; returns the list of misses. */
export function judge(results, modes) {
  const misses = [];
  for (const m of modes) {
    for (const [p, t] of Object.entries(results[m.name] ?? {})) {
      t.exactPct = t.untouched ? (100 * t.exact) / t.untouched : 100;
      t.target = target(p, m.kind === 'loss' ? m.rate : 0);
      const why = [];
      if (t.exactPct < t.target) why.push(`untouched exact ${t.exactPct.toFixed(2)} % < ${t.target} %`);
      if (t.unmarked > 0) why.push(`${t.unmarked} touched not marked`);
      if (t.mismatched > 0) why.push(`${t.mismatched} mismatched pairs`);
      t.pass = why.length === 0;
      if (!t.pass) misses.push(`${p} ${m.name}: ${why.join('; ')}`);
    }
  }
  return misses;
}

function table(results, modes) {
  const head = ['protocol', 'mutation', 'transactions', 'untouched', 'exact', 'exact %', 'target', 'not exact', 'of which unmarked', 'state lost (hpack insert)', 'touched', 'marked', 'unmarked', 'vanished', 'mismatched', 'spurious', 'pass'];
  const rows = [];
  for (const p of ['http', 'postgres', 'http2', 'grpc']) {
    for (const m of modes) {
      const t = results[m.name]?.[p];
      if (!t) continue;
      rows.push([p, m.name, t.transactions, t.untouched, t.exact, t.exactPct.toFixed(2), `≥${t.target}`,
        t.notExact, t.notExactUnmarked, `${t.hpack} (${t.hpackInsert})`, t.touched, t.marked, t.unmarked, t.vanished, t.mismatched, t.spurious, t.pass ? 'yes' : 'NO']);
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((x, i) => (i < 2 ? String(x).padEnd(w[i]) : String(x).padStart(w[i]))).join('  ');
  return [line(head), ...rows.map(line)].join('\n');
}

/** Write the --dump cases: one pcap + JSON per capture × mutation × seed × connection. */
export function writeDumps(dir, captures, cases) {
  mkdirSync(dir, { recursive: true });
  const byConn = new Map();
  for (const x of cases) {
    const id = `${basename(x.file, '.pcap')}-${x.mode.replace(/ past ACK/, '-ack').replace(/[ %]/g, '')}-s${x.seed}-${x.case.connection.split('|').map((e) => e.split(':')[1]).join('-')}`;
    if (!byConn.has(id)) byConn.set(id, { ...x, cases: [] });
    byConn.get(id).cases.push(x.case);
  }
  const written = [];
  for (const [id, g] of byConn) {
    const key = g.case.connection;
    const cap = captures.find((c) => c.file === g.file);
    const packets = g.mutation.packets.filter((e) => e.tcp?.key === key);
    writePcap(join(dir, `${id}.pcap`), packets);
    const fmt = (e) => ({ frame: e.packet.frame, from: e.tcp.from, seq: e.tcp.seq, len: e.tcp.len,
      ...(cap.frameMap.get(e.packet.frame) ? { streams: [...cap.frameMap.get(e.packet.frame).streams], hpackInserts: cap.frameMap.get(e.packet.frame).inserts } : {}) });
    writeFileSync(join(dir, `${id}.json`), JSON.stringify({
      capture: g.file, mutation: g.mode, seed: g.seed, connection: key,
      note: 'frames are the original capture\'s frame numbers; the .pcap beside this file holds the mutated packets of this connection only, in the order decoded (renumbered from 1)',
      dropped: g.mutation.dropped.filter((e) => e.tcp.key === key).map(fmt),
      moved: (g.mutation.moved ?? []).filter((e) => e.tcp.key === key).map(fmt),
      cases: g.cases.map((c) => ({ kind: c.kind, why: c.why, hpack: c.hpack, differs: c.differs, clean: c.clean, mutated: c.mutated })),
    }, null, 1));
    written.push(join(dir, `${id}.pcap`));
  }
  return written;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const files = o.files ?? [...pcapsIn('pcaps/loss'), ...(o.extra ? EXTRA_DIRS.flatMap(pcapsIn) : [])];
  if (files.length === 0) throw new Error('no captures: record them with ONLY=loss bash scripts/record-pcaps.sh');
  const protos = loadEchoProtos(PROTOS.filter((p) => existsSync(p)));
  const captures = [];
  for (const f of files) {
    const cap = await loadCapture(f, protos);
    const protocols = new Set(cap.records.map((r) => r.protocol));
    if (o.only && !protocols.has(o.only)) continue;
    if (cap.records.length === 0) continue;
    captures.push(cap);
    if (!o.quiet) console.log(`${f}: ${cap.records.length} records (${[...protocols].join(', ')}), ${cap.entries.length} packets; clean: ${cap.cleanIncomplete} incomplete, ${cap.cleanMismatched} mismatched`);
  }
  const t0 = Date.now();
  const { results, perCapture, cases, modes } = runAll(captures, o, o.quiet ? undefined : (s) => process.stderr.write(`  ${s}\n`));
  const misses = judge(results, modes);
  console.log(`\nloss harness, ${o.seeds} seed(s) per capture and mutation, ${captures.length} capture(s), ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(table(results, modes));
  if (!o.quiet) {
    const show = (title, field) => {
      console.log(`\n${title}:`);
      for (const m of modes) {
        for (const [p, t] of Object.entries(results[m.name])) {
          const v = t[field];
          if (Object.keys(v).length) console.log(`  ${p} ${m.name}: ${Object.entries(v).sort((a, b) => b[1] - a[1]).map(([r, n]) => `${r} ${n}`).join(', ')}`);
        }
      }
    };
    show('touched and marked, by incompleteReason', 'reasons');
    show('untouched but not exact, by what their record says (incompleteReason; "unmarked": not incomplete; "no record")', 'notExactReasons');
  }
  let dumps = [];
  if (o.dump) {
    dumps = writeDumps(o.dump, captures, cases);
    console.log(`\n${dumps.length} dump(s) in ${o.dump}`);
  }
  let commit = '';
  try { commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { /* not a checkout */ }
  mkdirSync(join(o.out, '..'), { recursive: true });
  writeFileSync(o.out, JSON.stringify({
    date: new Date().toISOString(), commit, command: `node bench/loss/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    options: o, captures: captures.map((c) => ({ file: c.file, records: c.records.length, packets: c.entries.length, cleanIncomplete: c.cleanIncomplete, cleanMismatched: c.cleanMismatched })),
    results, perCapture, misses, dumps,
    cases: cases.slice(0, 200).map((x) => ({ file: x.file, mode: x.mode, seed: x.seed, kind: x.case.kind, why: x.case.why, hpack: x.case.hpack, differs: x.case.differs, connection: x.case.connection,
      clean: x.case.clean?.id, mutated: x.case.mutated?.id, mutatedReason: x.case.mutated?.incompleteReason })),
  }, null, 1));
  console.log(`\nreport: ${o.out}`);
  if (misses.length) {
    console.log(`\ntargets missed:\n  ${misses.join('\n  ')}`);
    if (!o.reportOnly) process.exit(1);
  } else console.log('\nall targets met');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => { console.error(`loss: ${e.stack ?? e}`); process.exit(2); });
}
