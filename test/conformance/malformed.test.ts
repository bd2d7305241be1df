/**
 * The malformed, truncated and fuzzed captures of the shared set (MANIFEST "Malformed / truncated
 * / fuzz"): each must go through the whole pipeline without throwing, with the outcome written
 * below. The expectations are what tapwire does today, checked by hand against tshark and the
 * bytes; where that is a known defect the entry says so (see docs/conformance.md).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaptureFormatError } from '../../src/capture/types.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { PCAP_DIR, PCAPS_MISSING_REASON, PCAPS_PRESENT } from './oracle.js';

interface Expected {
  capture: string;
  /** Frames the reader delivered. */
  packets: number;
  /** Violation counts, exactly. */
  violations: Record<string, number>;
  truncatedAt?: number;
  /** HTTP transactions as "METHOD PATH STATUS". */
  records: string[];
  decoder?: Partial<Record<'ipv4' | 'ipv6' | 'tcp' | 'udp' | 'other', number>>;
  reassembly?: { connections?: number; gaps?: number; gapBytes?: number };
  /** What the capture is and why this is the right outcome. */
  why: string;
}

const EXPECTED: Expected[] = [
  {
    capture: 'suricata-verify/bug-6875-01/fuzz.pcap',
    packets: 1, violations: { 'pcap.record_length': 1, 'tcp.bad_offset': 1 }, truncatedAt: 370, records: [],
    decoder: { ipv4: 1, tcp: 0 },
    why: 'Record 1 (188 bytes at offset 24) is a sound Ethernet/IPv4 frame whose TCP data offset is 0 (tcp.bad_offset). '
      + 'The record header at offset 228 claims 1,409,179,648 bytes (pcap.record_length); the reader resynchronises, '
      + 'finds no two believable record headers in a row before the end (the header at 334 announces 330 bytes, the file '
      + 'ends at 385) and reports the file truncated where the scan stopped. tshark and capinfos refuse the file after 2 '
      + 'packets: they guess a different pcap variant (24-byte record headers), under which frame 1 starts 8 bytes late '
      + 'and the third record claims 16,711,424 bytes',
  },
  {
    capture: 'tcpdump/tcp_header_heapoverflow.pcap',
    packets: 1, violations: { 'tcp.header_short': 1 }, records: [], decoder: { ipv4: 1, tcp: 0 },
    why: 'snaplen 46: the one frame holds 12 of the 20 TCP header bytes',
  },
  {
    capture: 'tcpdump/heapoverflow-tcp_print.pcap',
    packets: 1, violations: { 'tcp.header_short': 1 }, records: [], decoder: { ipv4: 1, tcp: 0 },
    why: 'snaplen 64: the TCP header announces 60 bytes (40 of options), 30 were captured',
  },
  {
    capture: 'zeek/tcp/truncated-header.pcap',
    packets: 24, violations: { 'tcp.header_short': 1 }, records: [], decoder: { ipv4: 24, tcp: 23 },
    reassembly: { connections: 1, gaps: 11, gapBytes: 605 },
    why: 'snaplen 68: the SYN (frame 1) has 40 header bytes of which 34 were captured (tcp.header_short); every other '
      + 'frame keeps its 20-byte header and loses its whole payload, so all payload bytes are gaps: 477 server + 128 '
      + 'client = 605, the sum of tshark\'s tcp.len per direction',
  },
  {
    capture: 'arkime/empty.pcap',
    packets: 0, violations: {}, records: [], decoder: { ipv4: 0, ipv6: 0, other: 0 },
    why: 'a 24-byte pcap header and no records: not an error, not truncated',
  },
  {
    capture: 'zeek/snap-tcp.pcap',
    packets: 8, violations: {}, records: ['GET / 200'], decoder: { ipv4: 8, tcp: 8 },
    why: 'HTTP over 802.3 + LLC/SNAP (not Ethernet II); decoded like any Ethernet frame, same transaction as tshark',
  },
  {
    capture: 'suricata-verify/ipv4-truncated/truncated.pcap',
    packets: 1, violations: { 'ipv4.length_exceeds_frame': 1 }, records: [], decoder: { ipv4: 1, udp: 1 },
    why: 'one 1530-byte frame (captured whole: incl_len = orig_len) whose IPv4 total length says 65028 and UDP length '
      + '65008. tshark: "IPv4 total length exceeds packet length"; tapwire counts ipv4.length_exceeds_frame and takes '
      + 'the frame length, so no phantom bytes become a reassembly gap',
  },
];

if (!PCAPS_PRESENT) console.warn(`malformed.test.ts: ${PCAPS_MISSING_REASON}`);

describe.skipIf(!PCAPS_PRESENT)('malformed, truncated and fuzzed captures', () => {
  for (const e of EXPECTED) {
    it(`${e.capture}: ${e.packets} packet(s), ${Object.keys(e.violations).join(', ') || 'no violations'}`, async () => {
      const res = await analyzeFile(path.join(PCAP_DIR, e.capture), { bodyLimit: 65536 });
      const p = res.pipeline;
      expect(p.packets).toBe(e.packets);
      expect(p.violations.toJSON()).toEqual(e.violations);
      expect(res.file.truncatedAt).toBe(e.truncatedAt);
      const http = (res.records ?? []).filter((r) => r.protocol === 'http');
      expect(http.map((r) => `${r.request?.method ?? '-'} ${r.request?.path ?? '-'} ${r.response?.status ?? '-'}`)).toEqual(e.records);
      if (e.decoder) expect(p.decoder.stats).toMatchObject(e.decoder);
      if (e.reassembly) expect(p.reassembler.stats).toMatchObject(e.reassembly);
    });
  }

  describe('a real capture cut short', () => {
    let dir = '';
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'tapwire-conformance-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /**
     * Offsets where each packet record (pcap) or packet block (pcapng EPB/SPB/PB) starts, walked
     * independently of tapwire.
     */
    function packetStarts(buf: Buffer): number[] {
      const starts: number[] = [];
      if (buf.readUInt32LE(0) === 0x0a0d0d0a) {
        for (let p = 0; p + 8 <= buf.length; p += buf.readUInt32LE(p + 4)) {
          const type = buf.readUInt32LE(p);
          if (type === 6 || type === 3 || type === 2) starts.push(p);
        }
      } else {
        for (let p = 24; p + 16 <= buf.length; p += 16 + buf.readUInt32LE(p + 8)) starts.push(p);
      }
      return starts;
    }

    for (const capture of ['zeek/http/get-gzip.pcap', 'zeek/http/cooper-grill-dvwa.pcapng']) {
      it(`${capture} cut inside its last packet: truncatedAt is that record's offset, every packet before it is decoded`, async () => {
        const whole = readFileSync(path.join(PCAP_DIR, capture));
        const starts = packetStarts(whole);
        const last = starts[starts.length - 1]!;
        const cut = path.join(dir, path.basename(capture));
        writeFileSync(cut, whole.subarray(0, last + 10));
        const full = await analyzeFile(path.join(PCAP_DIR, capture));
        const res = await analyzeFile(cut);
        expect(full.file.truncatedAt).toBeUndefined();
        expect(full.pipeline.packets).toBe(starts.length);
        expect(res.file.truncatedAt).toBe(last);
        expect(res.pipeline.packets).toBe(starts.length - 1);
        expect(res.pipeline.violations.total).toBe(full.pipeline.violations.total);
      });
    }

    it('a file cut inside the pcap header is refused with CaptureFormatError naming the file', async () => {
      const cut = path.join(dir, 'header-cut.pcap');
      writeFileSync(cut, readFileSync(path.join(PCAP_DIR, 'zeek/http/get-gzip.pcap')).subarray(0, 10));
      await expect(analyzeFile(cut)).rejects.toThrow(CaptureFormatError);
      await expect(analyzeFile(cut)).rejects.toThrow(/header-cut\.pcap/);
    });
  });
});
