import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readCapture } from '../../src/capture/reader.js';
import { CaptureFormatError, type Packet } from '../../src/capture/types.js';
import { Violations } from '../../src/common/violations.js';
import { ethernet, pcap, pcapHeader, pcapng, pcapRecord, tcpPacket, type PcapRecord } from '../helpers/bytes.js';
import { everyN, packetView, parseChunks } from '../helpers/capture.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tapwire-reader-')); });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function frame(i: number, size = 40): Buffer {
  return ethernet(tcpPacket(Buffer.alloc(size, 0x41 + (i % 26)), { src: '10.0.0.1', dst: '10.0.0.2', seq: i * 1000, srcPort: 1000 + i }));
}

function records(n: number, size = 40): PcapRecord[] {
  return Array.from({ length: n }, (_, i) => ({ data: frame(i, size + i), sec: 1_700_000_000 + i, frac: i * 1000 }));
}

async function read(file: string, violations = new Violations()) {
  const packets: Packet[] = [];
  const info = await readCapture(file, (p) => packets.push({ ...p, data: Buffer.from(p.data) }), { violations });
  return { packets, info, violations };
}

function write(name: string, bytes: Buffer | string): string {
  const f = join(dir, name);
  writeFileSync(f, bytes);
  return f;
}

/** Runs readCapture('-') with stdin replaced by a stream of the given chunks. */
async function readStdin(chunks: Buffer[]) {
  const spy = vi.spyOn(process, 'stdin', 'get').mockReturnValue(Readable.from(chunks) as unknown as typeof process.stdin);
  try {
    return await read('-');
  } finally {
    spy.mockRestore();
  }
}

const smallPcap = pcap(records(5));
const smallPcapng = pcapng([
  { type: 'shb' },
  { type: 'idb', linkType: 1, tsresol: 9 },
  { type: 'raw', blockType: 0x0bad, body: Buffer.from('custom!') },
  { type: 'idb', linkType: 1, tsresol: 0x80 | 20 },
  ...records(4).map((r, i) => ({ type: 'epb' as const, iface: i % 2, ts: BigInt(i + 1) * 1_000_000n, data: r.data })),
  { type: 'spb', data: frame(9) },
  { type: 'shb', byteOrder: 'be' },
  { type: 'idb', linkType: 1 },
  { type: 'opb', iface: 0, ts: 3n, data: frame(10) },
]);

describe('readCapture: streaming', () => {
  it('reads a pcap file and reports its format and size', async () => {
    const { packets, info, violations } = await read(write('small.pcap', smallPcap));
    expect(info).toEqual({ format: 'pcap', bytesRead: smallPcap.length });
    expect(violations.total).toBe(0);
    expect(packets.map(packetView)).toEqual(parseChunks('pcap', smallPcap).packets.map(packetView));
    expect(packets.map((p) => p.frame)).toEqual([1, 2, 3, 4, 5]);
  });

  it('reads a pcapng file', async () => {
    const { packets, info } = await read(write('small.pcapng', smallPcapng));
    expect(info).toEqual({ format: 'pcapng', bytesRead: smallPcapng.length });
    expect(packets).toHaveLength(6);
  });

  for (const [kind, file] of [['pcap', smallPcap], ['pcapng', smallPcapng]] as const) {
    it(`${kind}: identical packets whatever byte the data is split at`, () => {
      const whole = parseChunks(kind, file);
      expect(whole.leftover).toBe(0);
      const expected = whole.packets.map(packetView);
      for (let k = 1; k < file.length; k++) {
        const split = parseChunks(kind, file, [k]);
        expect(split.packets.map(packetView), `split at ${k}`).toEqual(expected);
        expect(split.leftover, `split at ${k}`).toBe(0);
        expect(split.violations.total).toBe(0);
      }
      const bytewise = parseChunks(kind, file, everyN(file.length, 1));
      expect(bytewise.packets.map(packetView)).toEqual(expected);
    });

    it(`${kind}: stdin delivered in tiny chunks gives the same packets as the file`, async () => {
      const fromFile = (await read(write(`same.${kind}`, file))).packets.map(packetView);
      for (const size of [1, 3, 7, 64]) {
        const chunks = [];
        for (let i = 0; i < file.length; i += size) chunks.push(file.subarray(i, i + size));
        const { packets, info } = await readStdin(chunks);
        expect(packets.map(packetView), `chunks of ${size}`).toEqual(fromFile);
        expect(info.truncatedAt).toBeUndefined();
        expect(info.bytesRead).toBe(file.length);
      }
    });
  }

  it('memory stays flat while reading a ~200 MB pcap', async () => {
    const file = join(dir, 'big.pcap');
    const block = Buffer.concat(records(700, 1400).map((r) => pcapRecord(r))); // ~1.04 MB, not 1 MiB aligned
    const fd = openSync(file, 'w');
    writeSync(fd, pcapHeader());
    const copies = 192;
    for (let i = 0; i < copies; i++) writeSync(fd, block);
    closeSync(fd);
    try {
      const before = process.memoryUsage().rss;
      const total = 700 * copies;
      // Peak RSS over the first quarter of the file and over its second half: read in chunks, memory
      // levels off once the first chunks are in (when collections run is up to V8, so a level, not a
      // number), and does not grow with the bytes read, as it would if the file were held.
      let early = before, late = before;
      let count = 0;
      const info = await readCapture(file, () => {
        if (++count % 2000 !== 0) return;
        const rss = process.memoryUsage().rss;
        if (count <= total / 4) early = Math.max(early, rss);
        else if (count > total / 2) late = Math.max(late, rss);
      });
      expect(count).toBe(total);
      expect(info.truncatedAt).toBeUndefined();
      expect(info.bytesRead).toBeGreaterThan(190 * 1024 * 1024);
      expect(late - early).toBeLessThan(32 * 1024 * 1024);
      expect(late - before).toBeLessThan(128 * 1024 * 1024);
    } finally {
      rmSync(file, { force: true });
    }
  });
});

describe('readCapture: not a capture file', () => {
  const cases: [string, () => string, RegExp][] = [
    ['a text file', () => write('notes.txt', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /starts with bytes 47455420 \("GET "\), not a capture magic number/],
    ['an ELF binary', () => write('prog', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(100)])), /not a pcap or pcapng file: it starts with bytes 7f454c46, not/],
    ['an empty file', () => write('empty.pcap', Buffer.alloc(0)), /the file is empty/],
    ['a 3-byte file', () => write('tiny.pcap', Buffer.from([0xd4, 0xc3, 0xb2])), /only 3 bytes long/],
    ['a directory', () => { const d = join(dir, 'adir.pcap'); mkdirSync(d, { recursive: true }); return d; }, /is a directory/],
    ['a missing file', () => join(dir, 'does-not-exist.pcap'), /no such file/],
    ['a pcap cut inside its global header', () => write('short-header.pcap', pcapHeader().subarray(0, 10)), /truncated pcap file header \(10 bytes\)/],
    ['a pcapng cut inside its section header', () => write('short-header.pcapng', smallPcapng.subarray(0, 20)), /truncated pcapng file header/],
  ];
  for (const [name, make, why] of cases) {
    it(`${name} → CaptureFormatError naming the file and the problem`, async () => {
      const file = make();
      const err = await read(file).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(CaptureFormatError);
      expect((err as CaptureFormatError).file).toBe(file);
      expect((err as Error).message.startsWith(`${file}: `)).toBe(true);
      expect((err as Error).message).toMatch(why);
    });
  }

  it('stdin that is not a capture is named <stdin>', async () => {
    const err = await readStdin([Buffer.from('hello world')]).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(CaptureFormatError);
    expect((err as Error).message).toMatch(/^<stdin>: not a pcap or pcapng file/);
  });
});

describe('readCapture: damaged files', () => {
  it('a file cut mid-record delivers every record before the cut and says where', async () => {
    const recs = records(4);
    const full = pcap(recs);
    const third = 24 + pcapRecord(recs[0]!).length + pcapRecord(recs[1]!).length;
    for (const cut of [third + 5, third + 16, third + 30]) { // inside the header, right after it, inside the data
      const { packets, info } = await read(write(`cut-${cut}.pcap`, full.subarray(0, cut)));
      expect(packets.map((p) => p.frame)).toEqual([1, 2]);
      expect(info.truncatedAt).toBe(third);
      expect(info.bytesRead).toBe(cut);
    }
  });

  it('a pcapng cut mid-block delivers the blocks before it', async () => {
    const cut = smallPcapng.length - 10;
    const { packets, info } = await read(write('cut.pcapng', smallPcapng.subarray(0, cut)));
    expect(packets).toHaveLength(5);
    expect(info.truncatedAt).toBeGreaterThan(0);
    expect(info.truncatedAt).toBeLessThan(cut);
  });

  it('pcap: a record whose incl_len lies is a violation, and the records after it are still decoded', async () => {
    const recs = records(7);
    recs[3] = { ...recs[3]!, inclLen: 16 * 1024 * 1024 };
    const file = pcap(recs);
    const expectedPayloadSeqs = [0, 1, 2, 4, 5, 6].map((i) => i * 1000);
    const seqOf = (p: Packet) => p.data.readUInt32BE(14 + 20 + 4);

    const { packets, violations, info } = await read(write('liar.pcap', file));
    expect(violations.counts.get('pcap.record_length')).toBe(1);
    expect(violations.samples[0]!.reason).toMatch(/claims 16777216 bytes/);
    expect(packets.map(seqOf)).toEqual(expectedPayloadSeqs);
    expect(info.truncatedAt).toBeUndefined();

    // The same resynchronisation whatever the chunking.
    const whole = parseChunks('pcap', file).packets.map(packetView);
    for (let k = 1; k < file.length; k++) {
      const split = parseChunks('pcap', file, [k]);
      expect(split.packets.map(packetView), `split at ${k}`).toEqual(whole);
      expect(split.violations.counts.get('pcap.record_length')).toBe(1);
    }
  });

  it('pcap: a lying record that is the last one loses only itself', async () => {
    const recs = records(3);
    recs[2] = { ...recs[2]!, inclLen: 0x7fffffff };
    const { packets, violations } = await read(write('liar-last.pcap', pcap(recs)));
    expect(packets.map((p) => p.frame)).toEqual([1, 2]);
    expect(violations.counts.get('pcap.record_length')).toBe(1);
  });

  /**
   * Five EPBs after an SHB and an IDB. `mac` is the frames' destination MAC: the default
   * 02:00:00:00:00:02 reads as the little-endian word 2 (an obsolete Packet Block type) at a
   * 4-byte-aligned position inside each EPB, followed by a "length" of 0x00020200.
   */
  function fiveEpbs(mac?: Buffer): { file: Buffer; ends: number[] } {
    const epbs = records(5).map((r, i) => ({ type: 'epb' as const, iface: 0, ts: BigInt(i), data: mac ? ethernet(r.data.subarray(14), { dst: mac }) : r.data }));
    const file = pcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, ...epbs]);
    const ends: number[] = [];
    for (let pos = 0; pos < file.length; pos += file.readUInt32LE(pos + 4)) ends.push(pos + file.readUInt32LE(pos + 4));
    return { file, ends };
  }

  for (const [name, mac] of [['MACs that look like nothing', Buffer.from('aabbccddeeff', 'hex')], ['packet bytes that look like a block header', undefined]] as const) {
    it(`pcapng: a block whose trailing length disagrees → violation, resync to the next block (${name})`, async () => {
      const { file, ends } = fiveEpbs(mac);
      file.writeUInt32LE(12345, ends[4]! - 4); // the third EPB's trailing length
      const { packets, violations, info } = await read(write(`bad-trailer-${mac ? 'a' : 'b'}.pcapng`, file));
      expect(violations.counts.get('pcapng.block_length')).toBe(1);
      expect(violations.samples[0]!.reason).toMatch(/trailing 12345/);
      expect(packets.map((p) => p.time)).toEqual([0, 1, 3, 4].map((t) => t / 1e6));
      expect(info.truncatedAt).toBeUndefined();

      const whole = parseChunks('pcapng', file).packets.map(packetView);
      for (let k = 1; k < file.length; k++) {
        expect(parseChunks('pcapng', file, [k]).packets.map(packetView), `split at ${k}`).toEqual(whole);
      }
    });

    it(`pcapng: an impossible block length resynchronises too (${name})`, async () => {
      const { file, ends } = fiveEpbs(mac);
      file.writeUInt32LE(0xfffffff0, ends[1]! + 4); // leading length of the first EPB
      const { packets, violations, info } = await read(write(`bad-length-${mac ? 'a' : 'b'}.pcapng`, file));
      expect(violations.counts.get('pcapng.block_length')).toBe(1);
      expect(packets.map((p) => p.time)).toEqual([1, 2, 3, 4].map((t) => t / 1e6));
      expect(info.truncatedAt).toBeUndefined();
    });
  }

  it('pcapng: a section header without its byte-order magic is a violation, not a crash', () => {
    const file = pcapng([{ type: 'shb' }, { type: 'idb', linkType: 1 }, { type: 'epb', iface: 0, ts: 1n, data: frame(1) }]);
    file.writeUInt32LE(0xdeadbeef, 8);
    const { packets, violations } = parseChunks('pcapng', file);
    expect(violations.counts.get('pcapng.byte_order')).toBe(1);
    // The IDB that would have described interface 0 is found again by the resync.
    expect(packets).toHaveLength(1);
  });
});
