import { readCapture, type ReaderInfo } from '../capture/index.js';
import type { FlowRecord } from '../flows/index.js';
import { Pipeline, type PipelineOptions } from './pipeline.js';

export interface AnalyzeOptions extends Omit<PipelineOptions, 'onRecord'> {
  onRecord?: (r: FlowRecord) => void;
  onProgress?: (bytesRead: number) => void;
  afterChunk?: () => Promise<void> | void;
}

export interface AnalyzeResult {
  file: ReaderInfo;
  pipeline: Pipeline;
  records?: FlowRecord[];
  elapsedSec: number;
}

/**
 * Runs a capture file through the whole pipeline. With no onRecord, records are collected and
 * returned (tests, small files); the CLI streams them instead.
 */
export async function analyzeFile(path: string, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  const t0 = process.hrtime.bigint();
  const records: FlowRecord[] | undefined = opts.onRecord ? undefined : [];
  const pipeline = new Pipeline({ ...opts, onRecord: opts.onRecord ?? ((r) => records!.push(r)) });
  const file = await readCapture(path, (p) => pipeline.packet(p), {
    violations: pipeline.violations,
    onProgress: opts.onProgress,
    afterChunk: opts.afterChunk,
  });
  pipeline.finish();
  const elapsedSec = Number(process.hrtime.bigint() - t0) / 1e9;
  return { file, pipeline, records, elapsedSec };
}
