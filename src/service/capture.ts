import type { FlowRecord } from '../flows/index.js';
import { decodeCapture, type CaptureSummary, type DecodedCapture, type DecodeOptions } from '../pipeline/index.js';

import { compareKeys, type Snapshot } from '../store/index.js';
import { SourceError } from './errors.js';
import { pageOf, timeOf, type FlowPage, type FlowQuery } from './query.js';
import type { FlowEvent, FlowSource, FlowSubscription, ServiceMapAnswer } from './source.js';
import { mapOf, resolve } from './window.js';

/**
 * A capture file decoded in memory: its flows in start order, and its summary (what it held that
 * did not become flows included). It keeps no snapshots and, being whole, streams no new flows.
 */
export class CaptureSource implements FlowSource {
  readonly kind = 'capture' as const;
  readonly flows: readonly FlowRecord[];
  readonly summary: CaptureSummary;
  private readonly byId: Map<string, FlowRecord>;

  constructor(decoded: DecodedCapture, private readonly label = decoded.summary.file) {
    // Records leave the pipeline as exchanges complete; a source pages them in start order (then id).
    this.flows = [...decoded.flows].sort((a, b) => compareKeys(a, b));
    this.summary = decoded.summary;
    this.byId = new Map(decoded.flows.map((f) => [f.id, f]));
  }

  /** Decodes `file` (decodeCapture's options: redactor, protos, body limit …). Throws CaptureFormatError. */
  static async open(file: string, o: Omit<DecodeOptions, 'onRecord'> = {}, label?: string): Promise<CaptureSource> {
    return new CaptureSource(await decodeCapture(file, o), label);
  }

  describe(): string {
    return `capture ${this.label}`;
  }

  async query(q: FlowQuery): Promise<FlowPage> {
    // A capture file holds no snapshots: one named is missing, as on a store that never had it.
    const r = resolve(q, undefined);
    return pageOf(this.flows, { since: r.since, until: r.until, keep: r.keep, limit: r.limit, cursor: r.cursor });
  }

  async flow(id: string): Promise<FlowRecord | undefined> {
    return this.byId.get(id);
  }

  async snapshots(): Promise<Snapshot[]> {
    return [];
  }

  async snapshot(): Promise<Snapshot | undefined> {
    return undefined;
  }

  async serviceMap(q: { since?: string; until?: string; snapshot?: string } = {}): Promise<ServiceMapAnswer> {
    if (q.snapshot !== undefined) throw new SourceError('missing', `no snapshot "${q.snapshot}"`);
    const since = timeOf('since', q.since), until = timeOf('until', q.until);
    return mapOf({ ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) }, (cursor) => this.query({ ...q, limit: 1000, cursor }));
  }

  async subscribe(_on: (e: FlowEvent) => void): Promise<FlowSubscription> {
    // Every flow of a file is already there: no new one will come.
    return { ended: Promise.resolve(), close: () => undefined };
  }

  async close(): Promise<void> {
    // Memory only.
  }
}
