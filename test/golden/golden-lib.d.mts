// Types for golden-lib.mjs (plain JS, shared with scripts/golden.mjs) as golden.test.ts uses it.
import type { FlowRecord } from '../../src/flows/record.js';

export const GOLDEN_DIR: string;
export const GOLDEN_KEY: Buffer;

/** The captures under `dir` (pcap, pcapng), sorted. */
export function goldenFiles(dir?: string): string[];

/** One capture through the built pipeline: its records as JSONL, the records, and the summary's stats. */
export function goldenRun(file: string): Promise<{ jsonl: string; stats: Record<string, unknown>; records: FlowRecord[] }>;
