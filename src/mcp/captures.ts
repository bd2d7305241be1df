import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CaptureFormatError } from '../capture/types.js';
import type { FlowRecord } from '../flows/record.js';
import type { Redactor } from '../flows/redact.js';
import { analyzeFile } from '../pipeline/analyze.js';
import { ArgError } from './errors.js';
import type { DecodeCoverage } from '../pipeline/coverage.js';
import { undecodedCoverage, type UndecodedCoverage } from '../verify/verdict.js';
import { ServiceNames } from '../verify/services.js';

/** A capture file, decoded: its flows in start order, and what the decode saw. */
export interface Capture {
  /** The path as resolved (absolute). */
  path: string;
  flows: FlowRecord[];
  byId: Map<string, FlowRecord>;
  summary: CaptureSummary;
  /** What the decode saw but did not decode, for verdicts over the whole file. */
  coverage: DecodeCoverage;
}

export interface CaptureSummary {
  format: 'pcap' | 'pcapng';
  bytes: number;
  packets: number;
  flows: number;
  /** Connections identified, by protocol. */
  protocols: Record<string, number>;
  /** Epoch seconds of the first flow's start and the last flow's end. */
  window?: { start: number; end: number };
  violations: { total: number; counts: Record<string, number>; first?: string };
  /** The file ended inside a record at this byte; everything before was decoded. */
  truncatedAt?: number;
  /** Connections and UDP flows seen but not decoded, and their servers (absent when there were none). */
  undecoded?: UndecodedCoverage;
}

/** Captures kept decoded; a tool call on one of them costs no decode. */
const KEEP = 4;

/**
 * Capture files given to tools (`capture`), decoded once and kept by path, mtime and size, so the
 * calls of one investigation (analyze, list, get, verify) decode the file once and a rewritten
 * file is decoded again. Redacted as `tapwire analyze` and `verify` redact: evidence shown to an
 * agent carries tokens, not secrets.
 */
export class CaptureCache {
  /** Least recently used first (Map order, re-inserted on use). */
  private readonly kept = new Map<string, Promise<Capture>>();

  constructor(private readonly redactor: Redactor, private readonly keep = KEEP) {}

  /**
   * The capture `file` names, relative to `cwd` when not absolute. A file that is missing,
   * unreadable or not a capture is an ArgError naming `argument`.
   */
  async load(file: string, cwd: string, argument = 'capture'): Promise<Capture> {
    const path = resolve(cwd, file);
    let key: string;
    try {
      const s = await stat(path);
      if (s.isDirectory()) throw new ArgError(argument, `"${file}" is a directory, not a capture file`);
      key = `${path}\u0000${s.mtimeMs}\u0000${s.size}`;
    } catch (e) {
      if (e instanceof ArgError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new ArgError(argument, `"${file}": ${code === 'ENOENT' ? `no such file (looked for ${path})` : `cannot read it (${code ?? (e as Error).message})`}`);
    }
    let p = this.kept.get(key);
    if (p) this.kept.delete(key);
    else p = this.decode(path, file, argument);
    this.kept.set(key, p);
    // A failed decode is not kept: the next call tries again (the file may have been fixed).
    p.catch(() => this.kept.delete(key));
    while (this.kept.size > this.keep) this.kept.delete(this.kept.keys().next().value!);
    return p;
  }

  private async decode(path: string, given: string, argument: string): Promise<Capture> {
    const flows: FlowRecord[] = [];
    let result;
    try {
      result = await analyzeFile(path, { redactor: this.redactor, onRecord: (r) => flows.push(r) });
    } catch (e) {
      if (e instanceof CaptureFormatError) throw new ArgError(argument, `"${given}": ${e.message.slice(e.file.length + 2)}`);
      if ((e as NodeJS.ErrnoException).code) throw new ArgError(argument, `"${given}": cannot read it (${(e as NodeJS.ErrnoException).code})`);
      throw e;
    }
    // Records leave the pipeline as exchanges complete; tools page them in start order.
    flows.sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1));
    const { pipeline: p, file } = result;
    let start = Infinity, end = -Infinity;
    for (const f of flows) start = Math.min(start, f.start), end = Math.max(end, f.end);
    const summary: CaptureSummary = {
      format: file.format, bytes: file.bytesRead, packets: p.packets, flows: flows.length,
      protocols: { ...p.dispatcher.stats.byProtocol },
      ...(flows.length ? { window: { start, end } } : {}),
      violations: { total: p.violations.total, counts: p.violations.toJSON(), ...(p.violations.samples[0] ? { first: p.violations.samples[0].reason } : {}) },
      ...(file.truncatedAt !== undefined ? { truncatedAt: file.truncatedAt } : {}),
    };
    const coverage = p.coverage();
    if (coverage.connections + coverage.udpFlows > 0) summary.undecoded = undecodedCoverage(coverage, new ServiceNames());
    return { path, flows, byId: new Map(flows.map((f) => [f.id, f])), summary, coverage };
  }
}
