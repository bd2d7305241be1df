import type { ReaderInfo } from '../capture/index.js';
import type { DecodeStats } from '../decode/index.js';
import type { Enricher } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { ReassemblyStats } from '../reassembly/index.js';
import { analyzeFile, type AnalyzeOptions } from './analyze.js';
import type { DecodeCoverage } from './coverage.js';
import type { LimitCounts } from './limits.js';

/**
 * What decoding a capture file saw, in one object: the CLI's summary line and `--stats`, the MCP
 * server's analyze_capture, the golden baselines and verdicts' coverage all read it.
 */
export interface CaptureSummary {
  /** The file as given ("-" for stdin). */
  file: string;
  format: ReaderInfo['format'];
  /** Bytes of the file read. */
  bytes: number;
  packets: number;
  /** Flow records the pipeline made (before any filter a caller applies). */
  flows: number;
  /** Connections identified, by protocol. */
  protocols: Record<string, number>;
  /** TCP connections no decoder took (the dispatcher's count, empty ones included). */
  unknownConnections: number;
  /** Epoch seconds of the first flow's start and the last flow's end; absent without flows. */
  window?: { start: number; end: number };
  violations: { total: number; counts: Record<string, number>; first?: string };
  /** The file ended inside a record at this byte; everything before was decoded. */
  truncatedAt?: number;
  /** What was seen but not decoded (connections by why, UDP flows, their servers): `pipeline.coverage()`. */
  coverage: DecodeCoverage;
  /** Packets more than the reorder window out of time order, decoded late. */
  late: number;
  reassembly: ReassemblyStats;
  /**
   * Decrypted TLS plaintext in the file (a tapwire pcapng export's `tapwire-tls-plaintext`
   * interface): its packets and connections, reassembled apart from the wire's (`reassembly` counts
   * only the wire's). Absent when the file holds none.
   */
  plaintext?: { packets: number; connections: number };
  /** Limits that records show one by one, counted: `pipeline.limits()`. */
  limits: LimitCounts;
  decode: DecodeStats;
  /** Wall-clock seconds the decode took. */
  seconds: number;
}

export interface DecodedCapture {
  /**
   * The flows in the order the pipeline completed them (as `analyze --format jsonl` writes them,
   * and as verify has always judged them), when no `onRecord` took them; empty when one did (a
   * caller that streams records does not hold them all). A reader that pages sorts them by start.
   */
  flows: FlowRecord[];
  summary: CaptureSummary;
}

export interface DecodeOptions extends Omit<AnalyzeOptions, 'onProgress'> {
  /** Bytes of the file read so far, and flows decoded (a progress bar). */
  onProgress?: (bytesRead: number, flows: number) => void;
  /** Names the peers of each record before anyone sees it (--identities, --kubeconfig). */
  enricher?: Enricher;
}

/**
 * Decodes a capture file ("-" for stdin) into flows plus a summary: the one way tapwire reads a
 * capture (`analyze`, `verify`, `diff`, the MCP server's `capture` argument, the golden
 * baselines, the capture-file FlowSource). With `onRecord`, records stream to it as exchanges
 * complete and are not kept. Throws CaptureFormatError for a file that is not a capture.
 */
export async function decodeCapture(file: string, o: DecodeOptions = {}): Promise<DecodedCapture> {
  const flows: FlowRecord[] = [];
  let start = Infinity, end = -Infinity, count = 0;
  const take = o.onRecord;
  const enricher = o.enricher;
  const progress = o.onProgress;
  const { pipeline: p, file: info, elapsedSec } = await analyzeFile(file, {
    ...o,
    onProgress: progress && ((n) => progress(n, count)),
    onRecord: (r) => {
      enricher?.enrich(r);
      count++;
      if (r.start < start) start = r.start;
      if (r.end > end) end = r.end;
      if (take) take(r);
      else flows.push(r);
    },
  });
  const v = p.violations;
  const summary: CaptureSummary = {
    file, format: info.format, bytes: info.bytesRead, packets: p.packets, flows: p.flows,
    protocols: { ...p.dispatcher.stats.byProtocol }, unknownConnections: p.dispatcher.stats.unknown,
    ...(p.flows > 0 ? { window: { start, end } } : {}),
    violations: { total: v.total, counts: v.toJSON(), ...(v.samples[0] ? { first: v.samples[0].reason } : {}) },
    ...(info.truncatedAt !== undefined ? { truncatedAt: info.truncatedAt } : {}),
    coverage: p.coverage(), late: p.timeOrder.late,
    reassembly: p.reassembler.stats, limits: p.limits(), decode: p.decoder.stats, seconds: elapsedSec,
    ...(p.plaintextStats ? { plaintext: p.plaintextStats } : {}),
  };
  return { flows, summary };
}
