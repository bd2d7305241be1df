/**
 * Counted problems with wire or file input. Decoders never throw on bad input: they call
 * `add()` with a stable code (e.g. `pcap.record_length`, `tcp.header_short`) and carry on,
 * in the spirit of llhttp's error table and Zeek's weird.log.
 */
export interface ViolationSample {
  code: string;
  reason: string;
  /** Frame number (1-based) or byte offset the problem was seen at, when known. */
  where?: number;
}

export class Violations {
  readonly counts = new Map<string, number>();
  /** The first few occurrences, kept for messages; bounded so a hostile file cannot grow it. */
  readonly samples: ViolationSample[] = [];
  total = 0;
  static readonly MAX_SAMPLES = 50;

  add(code: string, reason: string, where?: number): void {
    this.total++;
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
    if (this.samples.length < Violations.MAX_SAMPLES) this.samples.push({ code, reason, where });
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort());
  }
}
