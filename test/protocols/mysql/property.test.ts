// fast-check: whatever bytes either side sends, cut however, the session never throws and what it
// emits stays within its limits.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { feed, packet, segments } from './harness.js';
import { KEEP_BYTES } from '../../../src/protocols/mysql/session.js';

const PREVIEW = 3;

/** Packets that look like MySQL (so the grammar is exercised past the framing), and raw bytes. */
const chunk = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  fc.tuple(fc.integer({ min: 0, max: 8 }), fc.uint8Array({ maxLength: 40 })).map(([seq, b]) => packet(seq, Buffer.from(b))),
  fc.tuple(fc.constantFrom(0x00, 0xfe, 0xff, 0x01, 0x02, 0x03, 0x16, 0x17, 0xfb), fc.uint8Array({ maxLength: 30 }))
    .map(([h, b]) => packet(1, Buffer.concat([Buffer.from([h]), Buffer.from(b)]))),
);

describe('MysqlSession under fast-check', () => {
  it('never throws, and keeps previews, values and messages bounded', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.constantFrom(0 as const, 1 as const), chunk), { maxLength: 25 }), fc.integer({ min: -1, max: 30 }),
      fc.boolean(), fc.boolean(), (steps, cut, mid, lose) => {
        const segs = segments(steps);
        const drop = lose && segs.length > 2 ? new Set([segs[1]!.frame]) : undefined;
        const { out } = feed(segs, { cut, mid, drop, previewRows: PREVIEW });
        for (const e of out) {
          expect(e.protocol).toBe('mysql');
          const r = e.mysql.response;
          expect(r?.preview?.length ?? 0).toBeLessThanOrEqual(PREVIEW);
          expect(r?.error?.message.length ?? 0).toBeLessThanOrEqual(260);
          expect(e.mysql.request?.query?.length ?? 0).toBeLessThanOrEqual(KEEP_BYTES);
          for (const row of r?.preview ?? []) for (const v of row) if (typeof v === 'string') expect(v.length).toBeLessThan(300);
        }
      }), { numRuns: 1500 });
  });
});
