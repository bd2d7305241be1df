/**
 * HPACK after a lost header block (RFC 7541): what the decoder can still prove, and nothing more.
 *
 * After a loss the dynamic table is [entries inserted since the loss, newest first: known] +
 * [whatever the lost block(s) inserted: unknown] + [older entries, shifted by an unknown count and
 * cut by eviction: unknown positions]. Insertion is at the front (§2.3.3, index 62 is the newest)
 * and eviction takes the oldest first (§4.4), so the front is known exactly whatever the lost block
 * did, and once the entries known since the loss plus a new one exceed the table's maximum size
 * every unknown entry has certainly been evicted. These unit tests pin that state machine; the
 * end-to-end part drops one HEADERS-carrying segment of pcaps/loss and checks the records.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { HpackDecoder, HpackError } from '../../src/protocols/http2/hpack.js';
import { dropSegment, h2Blocks, loadLoss, recordsOf, sameRecord, type LossCapture } from './loss-helpers.js';
import { int } from './hpack-int.js';

// ---- a minimal encoder (raw strings; Huffman is covered by hpack.test.ts) ----------------------

const str = (s: string): number[] => [...int(7, 0, s.length), ...Buffer.from(s, 'latin1')];
/** §6.2.1 literal with incremental indexing, new name. */
const insert = (name: string, value: string): number[] => [0x40, ...str(name), ...str(value)];
/** §6.2.1 literal with incremental indexing, name by index. */
const insertNamed = (index: number, value: string): number[] => [...int(6, 0x40, index), ...str(value)];
/** §6.1 indexed field. */
const indexed = (index: number): number[] => int(7, 0x80, index);
/** §6.3 dynamic table size update. */
const sizeUpdate = (n: number): number[] => int(5, 0x20, n);
const block = (...parts: number[][]): Uint8Array => Uint8Array.from(parts.flat());
const f = (name: string, value: string): { name: string; value: string } => ({ name, value });
/** Entry size (§4.1). */
const size = (name: string, value: string): number => name.length + value.length + 32;

/** A decoder in sync whose table holds `entries` (oldest first), then a loss. */
function afterLoss(entries: [string, string][] = [['x-old', 'a'], ['x-old', 'b']], maxTableSize?: number): HpackDecoder {
  const d = new HpackDecoder(maxTableSize !== undefined ? { maxTableSize } : {});
  d.decode(block(...entries.map(([n, v]) => insert(n, v))));
  d.desync();
  return d;
}

describe('HPACK after a lost header block (RFC 7541)', () => {
  it('entries inserted after the loss are known at 62 … 62+n−1, whatever the lost block did', () => {
    const d = afterLoss();
    expect(d.decode(block(indexed(2), insert('x-a', '1'), insert('x-b', '2')))).toEqual({ fields: [f(':method', 'GET'), f('x-a', '1'), f('x-b', '2')], unknown: 0 });
    // x-b is newest (62), x-a next (63): a block of static, literal and known-front references is exact.
    expect(d.decode(block(indexed(62), indexed(63), indexed(4), insertNamed(62, '3')))).toEqual({
      fields: [f('x-b', '2'), f('x-a', '1'), f(':path', '/'), f('x-b', '3')], unknown: 0,
    });
    expect(d.desynced).toBe(true);
    expect(d.dynamicTable().entries.map((e) => `${e.name}: ${e.value}`)).toEqual(['x-b: 3', 'x-b: 2', 'x-a: 1']);
  });

  it('a reference past the known front is missing and counted, never guessed from the table before the loss', () => {
    const d = afterLoss([['x-old', 'a']]);
    d.decode(block(insert('x-a', '1')));
    // Before the loss x-old was at 62; now 62 is x-a and 63 is whatever the lost block inserted, or x-old.
    expect(d.decode(block(indexed(63), indexed(62)))).toEqual({ fields: [f('x-a', '1')], unknown: 1 });
  });

  it('a partial block still inserts its own entries at the front, so later blocks that use them decode exactly', () => {
    const d = afterLoss();
    const r = d.decode(block(indexed(70), insert('x-id', '7'), insertNamed(65, 'v')));
    // 70 and the name at 65 are unknown: two fields missing; both inserts still took the front.
    expect(r).toEqual({ fields: [f('x-id', '7')], unknown: 2 });
    expect(d.dynamicTable().entries.map((e) => e.name)).toEqual([undefined, 'x-id']);
    expect(d.decode(block(indexed(63), indexed(62)))).toEqual({ fields: [f('x-id', '7')], unknown: 1 });
  });

  it('keeps the size of the known part exact (name + value + 32, §4.1)', () => {
    const d = afterLoss();
    d.decode(block(insert('x-a', '1'), insert('content-type', 'application/grpc')));
    expect(d.dynamicTable().size).toBe(size('x-a', '1') + size('content-type', 'application/grpc'));
    d.decode(block(insertNamed(31, 'text/plain'))); // static name content-type (Appendix A)
    expect(d.dynamicTable().size).toBe(size('x-a', '1') + size('content-type', 'application/grpc') + size('content-type', 'text/plain'));
  });

  it('is in sync again once the entries known since the loss plus a new one exceed the maximum: the unknown tail is evicted', () => {
    const d = afterLoss(); // the connection's limit: the initial 4096 (RFC 9113 §6.5.2)
    const v = 'v'.repeat(1000 - 32 - 4); // entries of exactly 1000 octets
    for (let k = 0; k < 4; k++) {
      expect(d.desynced, `after ${k} inserts of 1000`).toBe(true);
      d.decode(block(insert(`x-${k}`, v)));
    }
    // 4000 known + 96 free: an unknown entry of 32+ octets could still be there.
    expect(d.desynced).toBe(true);
    d.decode(block(insert('x-4', v)));
    // 5000 inserted since: the oldest known one went too, and every unknown one before it.
    expect(d.desynced).toBe(false);
    expect(d.dynamicTable().entries.map((e) => e.name)).toEqual(['x-4', 'x-3', 'x-2', 'x-1']);
    expect(d.decode(block(indexed(65)))).toEqual({ fields: [f('x-1', v)], unknown: 0 });
    // In sync, a reference past the table is malformed again, not unknown.
    expect(() => d.decode(block(indexed(66)))).toThrow(HpackError);
  });

  it('proves eviction against the table size the peer allowed (SETTINGS_HEADER_TABLE_SIZE)', () => {
    const d = new HpackDecoder();
    d.setMaxTableSizeLimit(8192);
    d.decode(block(sizeUpdate(8192), insert('x-old', 'a')));
    d.desync();
    const v = 'v'.repeat(1000 - 32 - 4);
    for (let k = 0; k < 5; k++) d.decode(block(insert(`x-${k}`, v)));
    expect(d.desynced).toBe(true); // 5000 < 8192: the lost block may have inserted 3 KB that is still there
    for (let k = 5; k < 9; k++) d.decode(block(insert(`x-${k}`, v)));
    expect(d.desynced).toBe(false);
  });

  it('a size update after the loss makes the maximum exact; one to 0 empties the table at once (§6.3)', () => {
    const d = afterLoss();
    d.decode(block(sizeUpdate(300), insert('x-a', '1')));
    expect(d.dynamicTable().maxSize).toBe(300);
    expect(d.desynced).toBe(true);
    d.decode(block(insert('x-b', 'v'.repeat(230)))); // 36 + 265 = 301 > 300: x-a evicted, and every unknown entry
    expect(d.desynced).toBe(false);

    const e = afterLoss();
    expect(e.decode(block(sizeUpdate(0), sizeUpdate(4096), insert('x-a', '1'), indexed(62)))).toEqual({ fields: [f('x-a', '1'), f('x-a', '1')], unknown: 0 });
    expect(e.desynced).toBe(false);
    expect(() => e.decode(block(indexed(63)))).toThrow(HpackError);
  });

  it('an entry inserted under the name of an unknown entry has an unknown name, and so has every entry that copies it', () => {
    // What Node's and grpc-js's encoder do for x-request-id: each value inserted with its name taken
    // from the previous x-request-id entry (pcaps/loss). After a loss the chain's root is unknown, so
    // the name stays unknown, and the header missing, until the chain is evicted: proven, never guessed.
    const d = afterLoss([['x-request-id', '1']]);
    for (let k = 2; k < 6; k++) expect(d.decode(block(indexed(8), insertNamed(62, String(k))))).toEqual({ fields: [f(':status', '200')], unknown: 1 });
    expect(d.dynamicTable().entries.every((e) => e.name === undefined)).toBe(true);
    expect(d.desynced).toBe(true);
    // A literal name breaks the chain: from then on the header decodes.
    d.decode(block(insert('x-request-id', '6')));
    expect(d.decode(block(insertNamed(62, '7'), indexed(63)))).toEqual({ fields: [f('x-request-id', '7'), f('x-request-id', '6')], unknown: 0 });
  });
});

// ---- end to end: one HEADERS-carrying segment of pcaps/loss dropped -----------------------------

const FILES = ['pcaps/loss/http2.pcap', 'pcaps/loss/grpc.pcap'] as const;

describe.each(FILES)('%s with one HEADERS-carrying segment dropped', (file) => {
  let cap: LossCapture;
  beforeAll(async () => {
    expect(existsSync(file), `${file} (record with ONLY=loss bash scripts/record-pcaps.sh)`).toBe(true);
    cap = await loadLoss(file);
  });

  for (const side of ['client', 'server'] as const) {
    it(`${side} side: later streams come out exactly as in the clean run once their references are known, the rest marked and never wrong`, () => {
      // The 30th segment of that side carrying a header block that inserts, on the first connection.
      const { dropped, conn, dir } = dropSegment(cap, side, 30);
      const clean = cap.clean.filter((r) => r.connectionId === conn);
      const got = recordsOf(cap, dropped).filter((r) => r.connectionId === conn);
      // Which later header blocks of that direction reference only what is provable: replay the
      // clean blocks through a decoder that loses the dropped segment's blocks.
      const decodable = h2Blocks(cap, dir, dropped);
      let exactWanted = 0, exactGot = 0, marked = 0, recovered = 0;
      for (const c of clean) {
        if (c.streamId === undefined || decodable.touched.has(c.streamId)) continue;
        const m = got.find((r) => r.streamId === c.streamId);
        expect(m, `stream ${c.streamId} has a record`).toBeDefined();
        const r = m!;
        if (!decodable.partial.has(c.streamId)) {
          exactWanted++;
          expect(sameRecord(r, c), `stream ${c.streamId}: every reference known, so exactly as clean`).toBe(true);
          exactGot++;
          if (decodable.after.has(c.streamId)) recovered++;
          continue;
        }
        // Not provable: marked, and what it does say is what the clean run says.
        expect(r.incomplete, `stream ${c.streamId}`).toBe(true);
        expect(r.incompleteReason).toBe('headers-desynced');
        expect(r.headersPartial).toBe(true);
        marked++;
        for (const half of ['request', 'response'] as const) {
          for (const [k, v] of Object.entries(r[half]?.headers ?? {})) expect(c[half]!.headers[k], `stream ${c.streamId} ${half} ${k}`).toBe(v);
        }
      }
      expect(exactGot).toBe(exactWanted);
      expect(marked).toBeGreaterThan(0);
      // Requests of http2.pcap whose id is only in :path reference :authority and static entries:
      // exact again once :authority is re-inserted (93 of 372 later streams). Every other case here
      // carries x-request-id under a name chained to an entry from before the loss (see the unit
      // test above), so none of its later streams is provably whole: 0 recover.
      if (file === 'pcaps/loss/http2.pcap' && side === 'client') expect(recovered).toBeGreaterThan(50);
      else expect(recovered).toBe(0);
      // Other connections are untouched.
      const others = cap.clean.filter((r) => r.connectionId !== conn);
      const rest = recordsOf(cap, dropped).filter((r) => r.connectionId !== conn);
      expect(rest.length).toBe(others.length);
      for (const c of others) expect(sameRecord(rest.find((r) => r.connectionId === c.connectionId && r.streamId === c.streamId)!, c)).toBe(true);
    });
  }
});
