/**
 * HTTP/2 and gRPC conformance against tshark: every shared capture whose oracle has h2 / h2hdr /
 * grpc rows is analysed, and for every stream tshark decoded, tapwire's record of the same
 * connection and stream id must carry the same pseudo-headers, header and trailer values, interim
 * statuses, gRPC messages (count, sizes, compressed flags), grpc-status, RST_STREAMs and DATA
 * byte counts (http2-compare.ts). Every disagreement must be listed below with a reason checked
 * by hand (tshark -V with the capture's decode-as, and the frame bytes); an unexplained one fails
 * the test. See docs/conformance.md, section "HTTP/2 and gRPC".
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import {
  compareStreams, frameSources, oracleH2, tapwireH2, type H2Deviation, type H2DeviationKind,
} from './http2-compare.js';
import {
  PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT, listCaptures, readOracle,
} from './oracle.js';
import { reconcile as reconcileWith } from './explained.js';
import { keepReport, printReportsOnFailure } from '../helpers/report.js';

printReportsOnFailure();

/** Overall share of tshark's items (fields, statuses, messages, RSTs, body lengths) tapwire agrees with. */
const MIN_ITEM_RATE = 0.95;

/**
 * One disagreement with tshark, checked by hand. `what` is the deviation's exact `what` (see
 * H2DeviationKind in http2-compare.ts); `stream` the HTTP/2 stream id (0: connection).
 */
interface Explained {
  capture: string;
  kind: H2DeviationKind;
  stream: number;
  what: string;
  /** How many identical deviations this entry covers (default 1). */
  count?: number;
  reason: string;
}

/** Deviations where tapwire is right (or sees more) and tshark is wrong (or sees less), or a deliberate choice. */
const EXPLAINED: Explained[] = [
  // ---- tshark sees less ----
  {
    capture: 'arkime/http2-nghttp2.pcap', kind: 'extra-half', stream: 13, what: 'req',
    reason: 'the client\'s HEADERS on stream 13 is a 16384-byte frame (frames 4-22) plus a 2192-byte CONTINUATION (frames 22-24). '
      + 'Without decode-as (port 80), tshark reaches HTTP/2 through the HTTP dissector (frame.protocols null:ip:tcp:http:http2), '
      + 'and that path never reassembles the frame: '
      + 'one pass shows "HEADERS[13][BoundErrorUnreassembled Packet]", two passes show nothing, so the oracle has no request. '
      + 'With -d tcp.port==80,http2 tshark shows "HEADERS[13]: GET /" in frame 22 with :method GET, :path /, :scheme http, '
      + ':authority nghttp2.org, accept, accept-encoding, user-agent and continuation-test-1..5, exactly as tapwire; it does not '
      + 'decode the CONTINUATION, where continuation-test-6 ends. Node\'s nghttp2 server, fed the client\'s bytes, decodes the '
      + 'same 13 fields as tapwire, continuation-test-1..6 each 4096 "-"',
  },
  {
    capture: 'deepflow/http/grpc-server-stream.pcap', kind: 'extra-field', stream: 1, what: 'resp-trailer grpc-status',
    reason: 'the trailers (HEADERS, END_STREAM) are in frame 8, after three server holes (17 bytes before frames 6, 7 and 8: '
      + 'seq 1575→1592, 2098→2115, 2867→2884). The oracle runs with tcp.reassemble_out_of_order:TRUE, so tshark holds frames '
      + '6-8 waiting for the holes and never dissects them. Without that option tshark shows frame 8 as "DATA[1], HEADERS[1]" '
      + 'with grpc-status 0 and an empty grpc-message, as tapwire',
  },
  {
    capture: 'deepflow/http/grpc-server-stream.pcap', kind: 'extra-field', stream: 1, what: 'resp-trailer grpc-message',
    reason: 'same trailer block as grpc-status (frame 8), never dissected by tshark with out-of-order reassembly; without it '
      + 'tshark shows grpc-message "" as tapwire',
  },
  {
    capture: 'deepflow/http/grpc-server-stream.pcap', kind: 'grpc-status', stream: 1, what: 'resp',
    reason: 'grpc-status 0 is in the trailers of frame 8, which tshark (out-of-order reassembly on) never dissects; see the '
      + 'grpc-status trailer entry',
  },
  {
    capture: 'deepflow/http/grpc-server-stream.pcap', kind: 'body', stream: 1, what: 'resp',
    reason: 'tshark counts the DATA of frames 3 and 5 only (1235 + 251); frames 6-8 hold three more whole DATA frames '
      + '(497 + 743 + 497, each one gRPC message of 492, 738, 492 bytes) that tshark without out-of-order reassembly also '
      + 'shows: 3223 bytes, tapwire\'s bodySize',
  },
  {
    capture: 'deepflow/http/grpc-server-stream.pcap', kind: 'grpc-messages', stream: 1, what: 'resp',
    reason: 'the three messages of frames 6-8 (492, 738, 492 bytes) that tshark never dissects with out-of-order reassembly '
      + 'on (see the body entry). Each fills one DATA frame exactly, so tapwire restarts gRPC framing there after the holes '
      + '(GrpcMessageReader.restartAt) and keeps all 5; without that option tshark shows the same 5',
  },
];

/**
 * Deviations where tapwire is wrong: decoder bugs, diagnosed (file:line, fix) in
 * docs/conformance.md "HTTP/2 and gRPC". They keep the suite green while the fix is pending and
 * are reported separately; one that no longer matches is reported as fixed.
 */
const KNOWN_BUGS: Explained[] = [
];

/**
 * RST_STREAM error codes read by hand (`tshark -V`, field http2.rst_stream.error; the oracle has
 * no code column): every RST_STREAM tapwire reports must be listed here with the same code.
 */
const HAND_CHECKED_RST: { capture: string; stream: number; by: 'client' | 'server'; code: string; how: string }[] = [
  {
    capture: 'suricata-verify/dns-over-http2/dns_over_https.pcap', stream: 7, by: 'client', code: 'CANCEL',
    how: 'frame 20, from 10.200.30.140:49792: http2.rst_stream.error 8 (CANCEL)',
  },
  {
    capture: 'suricata-verify/http2-continuation/input.pcap', stream: 1, by: 'server', code: 'NO_ERROR',
    how: 'frame 25, from 127.0.0.1:8080: http2.rst_stream.error 0 (NO_ERROR); tapwire reports it: the reset arrives while the stream waits for its request to end',
  },
];

/** Encrypted HTTP/2 (ALPN h2, no keys): tapwire must not emit any record from it. */
const NEGATIVE = 'arkime/tls-alpn-h2.pcap';

interface Dev extends H2Deviation {
  capture: string;
}

interface CaptureResult {
  capture: string;
  tsharkStreams: number;
  tapwireStreams: number;
  /** tshark streams whose every item agrees. */
  streamsMatched: number;
  items: number;
  itemsMatched: number;
  /** gRPC messages tshark decoded, and those tapwire agrees on (size and flag, same position). */
  grpc: number;
  grpcMatched: number;
  /** tapwire's incomplete / headersPartial notes, per stream. */
  notes: string[];
  deviations: Dev[];
  rstCodes: string[];
}

const captures = PCAPS_PRESENT
  ? listCaptures().filter((c) => readOracle(path.join(PCAP_DIR, c)).h2Rows.length > 0)
  : [];
const otherCaptures = PCAPS_PRESENT ? listCaptures().filter((c) => !captures.includes(c)) : [];

if (!PCAPS_PRESENT) console.warn(`http2.test.ts: ${PCAPS_MISSING_REASON}`);

async function runCapture(capture: string): Promise<CaptureResult> {
  const file = path.join(PCAP_DIR, capture);
  const oracle = readOracle(file);
  const { records } = await analyzeFile(file, { bodyLimit: 1 << 20 });
  const o = oracleH2(oracle, await frameSources(file));
  const t = tapwireH2(records ?? []);
  const c = compareStreams(o, t);
  const items = c.streams.flatMap((s) => s.items);
  const grpcItems = items.filter((i) => / grpc#/.test(i.what));
  return {
    capture,
    tsharkStreams: c.streams.length,
    tapwireStreams: t.length,
    streamsMatched: c.streams.filter((s) => s.items.length > 0 && s.items.every((i) => i.ok)
      && !c.deviations.some((d) => d.conn === s.conn && d.stream === s.id)).length,
    items: items.length,
    itemsMatched: items.filter((i) => i.ok).length,
    grpc: grpcItems.length,
    grpcMatched: grpcItems.filter((i) => i.ok).length,
    notes: c.streams.filter((s) => s.notes.length > 0).map((s) => `stream ${s.id}: ${[...new Set(s.notes)].join(' ')}`),
    deviations: c.deviations.map((d) => ({ ...d, capture })),
    rstCodes: c.rstCodes,
  };
}

function covers(e: Explained, d: Dev): boolean {
  return e.capture === d.capture && e.kind === d.kind && e.stream === d.stream && e.what === d.what;
}

/** Deviations no entry covers, and entries nothing used. */
function reconcile(devs: readonly Dev[], table: readonly Explained[] = [...EXPLAINED, ...KNOWN_BUGS]): { unexplained: Dev[]; stale: Explained[] } {
  return reconcileWith(devs, table, covers);
}

const fmt = (d: Dev) => `${d.kind} stream ${d.stream} "${d.what}": ${d.detail}`;

describe.skipIf(!PCAPS_PRESENT)('HTTP/2 and gRPC conformance with tshark', () => {
  const results: CaptureResult[] = [];

  for (const capture of captures) {
    it(capture, async () => {
      const r = await runCapture(capture);
      results.push(r);
      const { unexplained } = reconcile(r.deviations);
      expect(unexplained.map(fmt), `unexplained deviations in ${capture}`).toEqual([]);
      for (const code of r.rstCodes) {
        const [stream, by, name] = code.split(' ');
        const hand = HAND_CHECKED_RST.find((h) => h.capture === capture && h.stream === Number(stream) && h.by === by);
        expect(hand, `${capture}: tapwire reports RST_STREAM ${name} by the ${by} on stream ${stream}; no hand-checked code`).toBeDefined();
        expect(name, `${capture}: RST_STREAM code on stream ${stream}`).toBe(hand!.code);
      }
    });
  }

  it(`${NEGATIVE}: encrypted h2 (ALPN, no keys) gives no records and no HTTP/2 violations`, async () => {
    const { records, pipeline } = await analyzeFile(path.join(PCAP_DIR, NEGATIVE), { bodyLimit: 1 << 20 });
    // Its TLS handshake is decoded (a tls record, test/conformance/tls.test.ts); nothing of HTTP/2.
    expect(records!.filter((r) => r.protocol !== 'tls')).toEqual([]);
    const h2Violations = [...pipeline.violations.counts.keys()].filter((k) => /^(http2|hpack|grpc)\./.test(k));
    expect(h2Violations).toEqual([]);
    expect(pipeline.dispatcher.stats.byProtocol).toEqual({ tls: 1 });
    expect(pipeline.dispatcher.stats.transactions).toBe(1);
  });

  it('emits no HTTP/2 or gRPC record from a capture tshark finds no HTTP/2 in', async () => {
    const found: string[] = [];
    for (const c of otherCaptures) {
      const { records } = await analyzeFile(path.join(PCAP_DIR, c), { bodyLimit: 65536 });
      const n = (records ?? []).filter((r) => r.protocol === 'http2' || r.protocol === 'grpc').length;
      if (n > 0) found.push(`${c}: ${n}`);
    }
    expect(found).toEqual([]);
  });

  it('explains every deviation from tshark', () => {
    expect(results.length).toBe(captures.length);
    const devs = results.flatMap((r) => r.deviations);
    const { unexplained, stale } = reconcile(devs);
    expect(unexplained.map((d) => `${d.capture}: ${fmt(d)}`)).toEqual([]);
    // An entry that explains nothing any more hides the next deviation of its kind: remove it.
    expect(stale.map((s) => `${KNOWN_BUGS.includes(s) ? 'KNOWN_BUGS entry no longer needed (bug fixed?)' : 'EXPLAINED entry no longer needed (fixed?)'}: ${s.capture} ${s.kind} stream ${s.stream} "${s.what}"`)).toEqual([]);
  });

  it(`agrees with at least ${100 * MIN_ITEM_RATE} % of what tshark decoded`, () => {
    expect(results.length).toBe(captures.length);
    const items = results.reduce((n, r) => n + r.items, 0);
    const ok = results.reduce((n, r) => n + r.itemsMatched, 0);
    expect(ok / items, `item match rate ${((100 * ok) / items).toFixed(2)} % (${ok}/${items})`).toBeGreaterThanOrEqual(MIN_ITEM_RATE);
  });

  afterAll(() => {
    if (results.length === 0) return;
    const rows = [...results].sort((a, b) => a.capture.localeCompare(b.capture));
    const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)} %`);
    const lines = [
      '| capture | tshark streams | tapwire streams | streams matched | items | items matched | match rate | gRPC msgs agreed | deviations |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ];
    const sum = (f: (r: CaptureResult) => number) => rows.reduce((n, r) => n + f(r), 0);
    for (const r of rows) {
      const kinds = new Map<string, number>();
      for (const d of r.deviations) {
        const bug = KNOWN_BUGS.some((e) => covers(e, d));
        const k = `${d.kind}${bug ? ' (bug)' : ''}`;
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
      const devs = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
      lines.push(`| \`${r.capture}\` | ${r.tsharkStreams} | ${r.tapwireStreams} | ${r.streamsMatched} | ${r.items} | ${r.itemsMatched} | ${pct(r.itemsMatched, r.items)} | ${r.grpcMatched}/${r.grpc} | ${devs} |`);
    }
    lines.push(`| **total** | ${sum((r) => r.tsharkStreams)} | ${sum((r) => r.tapwireStreams)} | ${sum((r) => r.streamsMatched)} | ${sum((r) => r.items)} | ${sum((r) => r.itemsMatched)} | ${pct(sum((r) => r.itemsMatched), sum((r) => r.items))} | ${sum((r) => r.grpcMatched)}/${sum((r) => r.grpc)} | |`);
    const devs = rows.flatMap((r) => r.deviations.map((d) => {
      const e = EXPLAINED.find((x) => covers(x, d));
      const b = KNOWN_BUGS.find((x) => covers(x, d));
      return `  ${d.capture}: ${fmt(d)}\n      ${e ? `explained: ${e.reason}` : b ? `DECODER BUG: ${b.reason}` : 'UNEXPLAINED'}`;
    }));
    const notes = rows.flatMap((r) => r.notes.map((n) => `  ${r.capture}: ${n}`));
    keepReport('http2-conformance', [
      'HTTP/2 and gRPC conformance (tshark oracle):', lines.join('\n'), '', 'Deviations:', ...devs, '',
      'tapwire incomplete / headersPartial (informational):', ...notes,
    ].join('\n'));
  });
});
