/**
 * Runs fixtures through the real pipeline (time order → decode → reassembly → HTTP/1 → records)
 * and reduces records to what a test compares.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pipeline, type PipelineOptions } from '../../src/pipeline/pipeline.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { FlowRecord, HttpFlowRecord, RecordRequest, RecordResponse } from '../../src/flows/record.js';
import { toPackets, segmentsToPcap, type FramePacket, type Segment } from './bytes.js';
import { httpOnly, httpRecord } from './records.js';

export interface Run<R extends FlowRecord = FlowRecord> {
  records: R[];
  pipeline: Pipeline;
  /** Violation counts by code. */
  violations: Record<string, number>;
}

/** The run of a capture that holds only HTTP: its records typed as such (throws on any other). */
export function httpRun(run: Run): Run<HttpFlowRecord> {
  return { ...run, records: httpOnly(run.records) };
}

export function runPackets(packets: FramePacket[], opts: Partial<PipelineOptions> = {}): Run {
  const records: FlowRecord[] = [];
  const pipeline = new Pipeline({ ...opts, onRecord: (r) => records.push(r) });
  for (const p of packets) pipeline.packet(p);
  pipeline.finish();
  return { records, pipeline, violations: pipeline.violations.toJSON() };
}

export function runSegments(segs: Segment[], opts: Partial<PipelineOptions> = {}): Run {
  return runPackets(toPackets(segs), opts);
}

/** Writes the segments to a pcap in a temp dir and analyzes it through readCapture. */
export async function runPcapFile(segs: Segment[]): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-http1-'));
  try {
    const file = join(dir, 'conv.pcap');
    writeFileSync(file, segmentsToPcap(segs));
    const res = await analyzeFile(file);
    return { records: res.records!, pipeline: res.pipeline, violations: res.pipeline.violations.toJSON() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A record half without what legitimately differs between two captures of the same bytes. */
export type Shape = Record<string, unknown>;

function halfShape(h: RecordRequest | RecordResponse | undefined): Shape | undefined {
  if (!h) return undefined;
  const { start: _s, end: _e, frames: _f, ...rest } = h;
  const out: Shape = { ...rest };
  if ('interim' in h && h.interim) out.interim = h.interim.map((i) => i.status);
  return out;
}

/** HTTP record without ids, times and frame numbers: equal for equal bytes however they were cut. */
export function shape(record: FlowRecord): Shape {
  const r = httpRecord(record);
  const out: Shape = { request: halfShape(r.request), response: halfShape(r.response) };
  if (r.incomplete) out.incomplete = r.incompleteReason;
  if (r.protocol === 'http' && r.upgrade) out.upgrade = r.upgrade;
  return out;
}

/** A short summary of an HTTP record: "GET /a -> 200" / "GET /a -> ∅ (no-response)". */
export function summary(record: FlowRecord): string {
  const r = httpRecord(record);
  const upgrade = r.protocol === 'http' ? r.upgrade : undefined;
  const req = r.request ? `${r.request.method} ${r.request.path}` : '∅';
  const resp = r.response ? `${r.response.status}` : '∅';
  const extra = [r.incomplete ? r.incompleteReason : '', upgrade ? `upgrade=${upgrade}` : ''].filter(Boolean).join(' ');
  return `${req} -> ${resp}${extra ? ` (${extra})` : ''}`;
}
