import { writeFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { captureSize } from '../capture/reader.js';
import { CaptureFormatError } from '../capture/types.js';
import { loadRedactKey, Redactor } from '../flows/redact.js';
import { analyzeFile } from '../pipeline/analyze.js';
import { DEFAULT_BODY_LIMIT } from '../pipeline/pipeline.js';
import { ProtoLoadError, ProtoSchemas } from '../protocols/grpc/protobuf.js';
import { compileFilter, FilterError, type FlowPredicate } from '../query/filter.js';
import { byStart, har, jsonl, Out, table, type Formatter } from './output.js';

export interface AnalyzeCliOptions {
  format: 'table' | 'jsonl' | 'har';
  bodyLimit: number;
  redact: boolean;
  redactHeader: string[];
  progress?: boolean;
  /** Write a JSON run summary here (packets, bytes, flows, violations, seconds, peak RSS). */
  stats?: string;
  /** .proto files or directories for gRPC message decoding. */
  proto?: string[];
  maxMessages?: number;
  redactParams?: boolean;
  /** CEL filter (README "Filter language"): only the flows it matches are output. */
  filter?: string;
}

/** Below this size a progress bar would only flicker. */
const PROGRESS_MIN_BYTES = 16 << 20;

function mb(n: number): string {
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1);
}

/** `tapwire analyze`: returns the process exit status. */
export async function runAnalyze(file: string, o: AnalyzeCliOptions): Promise<number> {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  let keep: FlowPredicate | undefined;
  if (o.filter !== undefined) {
    try {
      keep = compileFilter(o.filter);
    } catch (e) {
      if (e instanceof FilterError) {
        err(`tapwire: --${e.message}`);
        return 2;
      }
      throw e;
    }
  }
  let keyed: Redactor | undefined;
  if (o.redact || o.redactParams) {
    const k = loadRedactKey();
    if (k.warning) err(`tapwire: warning: ${k.warning}`);
    keyed = new Redactor({ key: k.key, headers: o.redactHeader });
  }
  const redactor = o.redact ? keyed : undefined;
  let protos: ProtoSchemas | undefined;
  if (o.proto && o.proto.length > 0) {
    try {
      protos = ProtoSchemas.load(o.proto);
    } catch (e) {
      if (e instanceof ProtoLoadError) {
        err(`tapwire: --proto ${e.message}`);
        return 2;
      }
      throw e;
    }
  }
  const out = new Out();
  // JSONL streams in completion order (tools sort); the human formats are ordered by start.
  const fmt: Formatter = o.format === 'jsonl' ? jsonl(out) : byStart(o.format === 'har' ? har(out) : table(out));

  const size = captureSize(file);
  const showBar = (o.progress ?? process.stderr.isTTY) && size !== undefined && size >= PROGRESS_MIN_BYTES;
  const bar = showBar
    ? new SingleBar({ format: 'tapwire {bar} {percentage}% | {value}/{total} MB | {flows} flows', stream: process.stderr, hideCursor: true, clearOnComplete: true })
    : undefined;
  let flows = 0;
  let matched = 0;
  bar?.start(Math.ceil(size! / 1e6), 0, { flows: 0 });
  let lastBar = 0;

  fmt.begin();
  let result;
  try {
    result = await analyzeFile(file, {
      bodyLimit: o.bodyLimit,
      redactor,
      protos,
      maxMessages: o.maxMessages,
      redactParams: o.redactParams ? keyed : undefined,
      onRecord: (r) => {
        flows++;
        if (keep && !keep(r)) return;
        matched++;
        fmt.record(r);
      },
      onProgress: (n) => {
        const now = Date.now();
        if (bar && now - lastBar > 100) {
          lastBar = now;
          bar.update(Math.floor(n / 1e6), { flows });
        }
      },
      afterChunk: () => out.ready(),
    });
  } catch (e) {
    bar?.stop();
    if (e instanceof CaptureFormatError) {
      err(`tapwire: ${e.message}`);
      return 2;
    }
    throw e;
  }
  fmt.end();
  await out.end();
  bar?.stop();

  const { pipeline: p, file: info, elapsedSec } = result;
  if (info.truncatedAt !== undefined) {
    err(`tapwire: warning: ${file === '-' ? '<stdin>' : file} is truncated: it ends inside a record at byte ${info.truncatedAt}; everything before the cut was decoded`);
  }
  const v = p.violations;
  if (v.total > 0) {
    const top = [...v.counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([c, n]) => `${c} ×${n}`).join(', ');
    err(`tapwire: violations: ${top}${v.counts.size > 6 ? ', …' : ''} (first: ${v.samples[0]?.reason ?? ''})`);
  }
  if (p.timeOrder.late > 0) err(`tapwire: warning: ${p.timeOrder.late} packets were more than the reorder window out of time order and were decoded late`);
  const rs = p.reassembler.stats;
  if (rs.evictedConnections > 0 || rs.forcedGaps > 0) {
    err(`tapwire: warning: limits reached: ${rs.evictedConnections} connections evicted, ${rs.forcedGaps} gaps forced by buffer limits`);
  }
  err(`tapwire: ${p.packets} packets, ${mb(info.bytesRead)} MB, ${p.flows} flows${keep ? ` (${matched} matched the filter)` : ''}, ${v.total} violations in ${elapsedSec.toFixed(2)} s (${mb(info.bytesRead / Math.max(elapsedSec, 1e-9))} MB/s)`);
  if (o.stats) {
    const summary = {
      file, format: info.format, bytes: info.bytesRead, packets: p.packets, flows: p.flows,
      ...(keep ? { filter: o.filter, matched } : {}),
      violations: v.toJSON(), seconds: elapsedSec, maxRssBytes: process.resourceUsage().maxRSS * 1024,
      truncatedAt: info.truncatedAt ?? null, reassembly: rs, decode: p.decoder.stats, protocols: p.dispatcher.stats.byProtocol,
    };
    try {
      writeFileSync(o.stats, `${JSON.stringify(summary, null, 2)}\n`);
    } catch (e) {
      err(`tapwire: cannot write --stats file ${o.stats}: ${(e as NodeJS.ErrnoException).code ?? e}`);
      return 2;
    }
  }
  return 0;
}

export const ANALYZE_DEFAULTS = { bodyLimit: DEFAULT_BODY_LIMIT };
