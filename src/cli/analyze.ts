import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CaptureFormatError } from '../capture/index.js';
import { plural } from '../common/index.js';
import { Redactor } from '../flows/index.js';
import { decodeCapture, DEFAULT_BODY_LIMIT, loadProtos, loadRedactKey, ProtoLoadError, type ProtoSchemas } from '../pipeline/index.js';
import { compileFilter, FilterError, type FlowPredicate } from '../query/index.js';
import { byStart, har, jsonl, Out, table, terminalWidth, type Formatter } from './output.js';
import { openIdentities } from './identities.js';
import { CaptureProgress, notDecodedText } from './source.js';

export interface AnalyzeCliOptions {
  format: 'table' | 'jsonl' | 'har';
  bodyLimit: number;
  redact: boolean;
  redactHeader: string[];
  progress?: boolean;
  /** Table lines uncut, whatever the terminal's width. */
  wide?: boolean;
  /** Write a JSON run summary here (packets, bytes, flows, violations, undecoded, seconds, peak RSS). */
  stats?: string;
  /** .proto files or directories for gRPC message decoding. */
  proto?: string[];
  maxMessages?: number;
  redactParams?: boolean;
  /** CEL filter (README "Filter language"): only the flows it matches are output. */
  filter?: string;
  /** Who the peers are: an identities file, a cluster (src/cli/identities.ts). */
  identities?: string;
  kubeconfig?: string;
}

function mb(n: number): string {
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1);
}

/** `tapwire analyze`: returns the process exit status. */
export async function runAnalyze(file: string, o: AnalyzeCliOptions): Promise<number> {
  const err = (s: string) => process.stderr.write(`${s}\n`);
  // Where output goes is checked before the capture is read: a typo costs nothing, not a whole decode.
  if (o.stats !== undefined) {
    const problem = unwritable(o.stats);
    if (problem) {
      err(`tapwire: --stats ${o.stats}: ${problem}`);
      return 2;
    }
  }
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
      protos = loadProtos(o.proto);
    } catch (e) {
      if (e instanceof ProtoLoadError) {
        err(`tapwire: --proto ${e.message}`);
        return 2;
      }
      throw e;
    }
  }
  const ids = await openIdentities(o, (line) => err(`tapwire: ${line}`));
  if (!ids) return 2;
  const out = new Out();
  // JSONL streams in completion order (tools sort); the human formats are ordered by start.
  const harOut = o.format === 'har' ? har(out) : undefined;
  const fmt: Formatter = o.format === 'jsonl' ? jsonl(out) : byStart(harOut ?? table(out, o.wide ? undefined : terminalWidth()));

  const bar = new CaptureProgress(file, o.progress ?? process.stderr.isTTY);
  let flows = 0;
  let matched = 0;

  fmt.begin();
  let result;
  try {
    result = await decodeCapture(file, {
      bodyLimit: o.bodyLimit,
      redactor,
      protos,
      maxMessages: o.maxMessages,
      redactParams: o.redactParams ? keyed : undefined,
      enricher: ids.enricher,
      onRecord: (r) => {
        flows++;
        if (keep && !keep(r)) return;
        matched++;
        fmt.record(r);
      },
      onProgress: (n) => bar.update(n, flows),
      afterChunk: () => out.ready(),
    });
  } catch (e) {
    bar.stop();
    ids.stop();
    if (e instanceof CaptureFormatError) {
      err(`tapwire: ${e.message}`);
      return 2;
    }
    throw e;
  }
  ids.stop();
  fmt.end();
  await out.end();
  bar.stop();

  const s = result.summary;
  if (s.truncatedAt !== undefined) {
    err(`tapwire: warning: ${file === '-' ? '<stdin>' : file} is truncated: it ends inside a record at byte ${s.truncatedAt}; everything before the cut was decoded`);
  }
  const v = s.violations;
  if (v.total > 0) {
    const codes = Object.entries(v.counts);
    const top = codes.sort((a, b) => b[1] - a[1]).slice(0, 6).map(([c, n]) => `${c} ×${n}`).join(', ');
    err(`tapwire: decode problems: ${top}${codes.length > 6 ? ', …' : ''} (first: ${v.first ?? ''})`);
  }
  if (s.late > 0) {
    err(`tapwire: warning: ${plural(s.late, 'packet was', 'packets were')} more than the reorder window out of time order and ${s.late === 1 ? 'was' : 'were'} decoded late`);
  }
  const rs = s.reassembly;
  const hit = Object.entries(s.limits).filter(([, n]) => n > 0).map(([name, n]) => `${name} ×${n}`);
  if (rs.evictedConnections > 0 || rs.forcedGaps > 0 || hit.length > 0) {
    // Each limit by the name the summary (--stats) gives it.
    const evicted = rs.evictedConnections > 0 ? [`${plural(rs.evictedConnections, 'connection')} evicted (by count ${rs.evictions.connections}, by memory ${rs.evictions.memory})`] : [];
    const forced = rs.forcedGaps > 0 ? [`${plural(rs.forcedGaps, 'gap')} forced by buffer limits`] : [];
    err(`tapwire: warning: limits reached: ${[...evicted, ...forced, ...hit].join(', ')}`);
  }
  const harSkipped = harOut ? Object.values(harOut.skipped).reduce((a, b) => a + b, 0) : 0;
  if (harOut && harSkipped > 0) {
    err(`tapwire: HAR holds ${harOut.written} of ${plural(harOut.written + harSkipped, 'flow')}; not in it: ${Object.entries(harOut.skipped).map(([why, n]) => `${plural(n, 'flow')} (${why})`).join(', ')}`);
  }
  // What was seen but not decoded is said, so an empty table is never read as "no traffic".
  const unseen = notDecodedText(s.coverage);
  err(`tapwire: ${plural(s.packets, 'packet')}, ${mb(s.bytes)} MB, ${plural(s.flows, 'flow')}${keep ? ` (${matched} matched the filter)` : ''}${unseen ? `, ${unseen}` : ''}, `
    + `${plural(v.total, 'decode problem')} in ${s.seconds.toFixed(2)} s (${mb(s.bytes / Math.max(s.seconds, 1e-9))} MB/s)`);
  if (o.stats) {
    const summary = {
      file, format: s.format, bytes: s.bytes, packets: s.packets, flows: s.flows,
      ...(keep ? { filter: o.filter, matched } : {}),
      violations: v.counts, seconds: s.seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024,
      truncatedAt: s.truncatedAt ?? null, reassembly: rs, decode: s.decode, protocols: s.protocols,
      undecoded: s.coverage, limits: s.limits,
    };
    try {
      writeFileSync(o.stats, `${JSON.stringify(summary, null, 2)}\n`);
    } catch (e) {
      err(`tapwire: --stats ${o.stats}: cannot write it: ${errnoText(e)}`);
      return 2;
    }
  }
  return 0;
}

/**
 * Why a file cannot be written at `path`, in words, or undefined when it can be (as far as can be
 * told before writing: the folder exists and is writable, the path is not a folder).
 */
export function unwritable(path: string): string | undefined {
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a folder`;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `the folder ${dir} does not exist`;
    if (code === 'ENOTDIR') return `${dir} is not a folder (a part of it is a file)`;
    return `the folder ${dir} cannot be used: ${errnoText(e)}`;
  }
  try {
    if (statSync(path).isDirectory()) return 'is a folder, not a file';
    accessSync(path, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return `the file exists and is not writable (${errnoText(e)})`;
    if (code !== 'ENOENT') return errnoText(e);
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (e) {
    return `the folder ${dir} is not writable (${errnoText(e)})`;
  }
  return undefined;
}

/** A file system error in words ("permission denied"), with its code. */
function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    EACCES: 'permission denied', EPERM: 'not permitted', EROFS: 'read-only file system', ENOSPC: 'no space left on the device',
    EISDIR: 'is a folder', ENOENT: 'no such file or folder', ENOTDIR: 'a part of the path is not a folder', EDQUOT: 'disk quota exceeded',
  };
  return code ? `${words[code] ?? 'error'} (${code})` : String(e);
}

export const ANALYZE_DEFAULTS = { bodyLimit: DEFAULT_BODY_LIMIT };
