import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { HttpFlowRecord } from '../../src/flows/record.js';
import { MAX_PENDING_BYTES, MAX_PENDING_REQUESTS } from '../../src/protocols/http1/session.js';
import { Conversation } from '../helpers/bytes.js';
import { httpRun, runSegments } from '../helpers/pipeline.js';
import { httpOnly } from '../helpers/records.js';
import { req, resp } from './cases.js';

/*
 * Pairing recovers after a loss. Packets are removed from real recorded captures (the peers' ACKs
 * still cover them, as when tcpdump drops packets under load), and the records are compared with
 * those of the whole capture: exactly the exchanges that lost bytes are incomplete, and every
 * other record is the same. pcaps/http1/mix.pcap is wrk keep-alive traffic, up to 14 requests
 * per connection; pcaps/http1/pipelined.pcap has four pipelined requests in one segment.
 */

const dir = mkdtempSync(join(tmpdir(), 'tapwire-recovery-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Packet {
  frame: number;
  srcPort: number;
  dstPort: number;
  payloadLength: number;
}

/** Record boundaries, TCP ports and payload lengths of a classic little-endian Ethernet/IPv4 pcap. */
function readPcap(file: string): { bytes: Buffer; records: [number, number][]; packets: Packet[] } {
  const bytes = readFileSync(file);
  const records: [number, number][] = [];
  const packets: Packet[] = [];
  for (let p = 24; p + 16 <= bytes.length;) {
    const len = bytes.readUInt32LE(p + 8);
    const d = bytes.subarray(p + 16, p + 16 + len);
    const ip = 14, tcp = ip + (d[ip]! & 15) * 4;
    packets.push({
      frame: records.length + 1,
      srcPort: d.readUInt16BE(tcp),
      dstPort: d.readUInt16BE(tcp + 2),
      payloadLength: d.readUInt16BE(ip + 2) - (tcp - ip) - (d[tcp + 12]! >> 4) * 4,
    });
    records.push([p, p + 16 + len]);
    p += 16 + len;
  }
  return { bytes, records, packets };
}

/** The capture's records with the given frames left out of it. */
async function analyzeWithout(file: string, frames: number[]): Promise<HttpFlowRecord[]> {
  const { bytes, records } = readPcap(file);
  const drop = new Set(frames);
  const out = join(dir, `without-${frames.join('-')}.pcap`);
  writeFileSync(out, Buffer.concat([bytes.subarray(0, 24), ...records.filter((_, i) => !drop.has(i + 1)).map(([s, e]) => bytes.subarray(s, e))]));
  return httpOnly((await analyzeFile(out)).records!);
}

/**
 * A record as both runs must agree on it. Connection ids and frame numbers hash or count frames,
 * which shift when packets are left out; the client port and capture times do not.
 */
function view(r: HttpFlowRecord) {
  const q = r.request, s = r.response;
  return {
    client: r.src.port,
    request: q && { method: q.method, path: q.path, start: q.start, size: q.size },
    response: s && { status: s.status, start: s.start, end: s.end, size: s.size, id: s.headers['x-request-id'] },
    incomplete: r.incompleteReason,
  };
}
type View = ReturnType<typeof view>;
const byRequest = (a: View, b: View) => `${a.client} ${a.request?.start} ${a.request?.path}`.localeCompare(`${b.client} ${b.request?.start} ${b.request?.path}`);

/**
 * Leaves `lose` out of `file` and checks the records against the whole capture's: the exchanges
 * of `victims` (request start time → expected reason) are incomplete for that reason, and every
 * other record is unchanged.
 */
async function expectRecovery(file: string, lose: number[], victims: Map<number, string>): Promise<HttpFlowRecord[]> {
  const whole = httpOnly((await analyzeFile(file)).records!);
  const cut = await analyzeWithout(file, lose);
  expect(cut).toHaveLength(whole.length);
  const isVictim = (v: View) => v.request !== undefined && victims.has(v.request.start);
  const want = whole.map(view).filter((v) => !isVictim(v)).sort(byRequest);
  expect(cut.map(view).filter((v) => !isVictim(v)).sort(byRequest)).toEqual(want);
  for (const [start, reason] of victims) {
    const rs = cut.filter((r) => r.request?.start === start);
    expect(rs, `the exchange whose request began at ${start}`).toHaveLength(1);
    expect(rs[0]!.incompleteReason).toBe(reason);
  }
  expect(cut.filter((r) => r.incomplete)).toHaveLength(whole.filter((r) => r.incomplete).length + victims.size);
  return cut;
}

const MIX = 'pcaps/http1/mix.pcap';

/** mix.pcap's connections (client port → records, in order), longest first. */
async function mixConnections(): Promise<HttpFlowRecord[][]> {
  const by = new Map<number, HttpFlowRecord[]>();
  for (const r of httpOnly((await analyzeFile(MIX)).records!)) by.set(r.src.port, [...(by.get(r.src.port) ?? []), r]);
  return [...by.values()].sort((a, b) => b.length - a.length);
}

/** Exchanges whose response came in one packet, and those whose response spans several. */
const onePacket = (r: HttpFlowRecord) => r.response !== undefined && r.response.frames![0] === r.response.frames![1];
const manyPackets = (r: HttpFlowRecord) => r.response !== undefined && r.response.frames![0] < r.response.frames![1];

describe('recovery after packets missing from a real keep-alive capture (mix.pcap)', () => {
  it('one response packet lost mid-connection: that exchange alone is incomplete, the rest pair as before', async () => {
    const [longest] = await mixConnections();
    const candidates = longest!.filter(onePacket);
    const victim = candidates[Math.floor(candidates.length / 2)]!;
    // Exchanges on the same connection follow it: pairing must come back for them.
    expect(longest!.indexOf(victim)).toBeLessThan(longest!.length - 3);
    const cut = await expectRecovery(MIX, [victim.response!.frames![0]], new Map([[victim.request!.start, 'response-lost-in-gap']]));
    expect(cut.find((r) => r.request?.start === victim.request!.start)!.response).toBeUndefined();
  });

  it('several packets lost across connections, two on one connection, and in multi-packet responses', async () => {
    const conns = await mixConnections();
    const victims = new Map<number, string>();
    const lose: number[] = [];
    const loseResponse = (r: HttpFlowRecord) => {
      victims.set(r.request!.start, 'response-lost-in-gap');
      lose.push(r.response!.frames![0]);
    };
    // Two non-adjacent exchanges of the longest connection, and one in the middle of three others.
    const first = conns[0]!.filter(onePacket);
    loseResponse(first[2]!);
    loseResponse(first[first.length - 3]!);
    for (const c of conns.slice(1, 4)) {
      const ones = c.filter(onePacket);
      loseResponse(ones[Math.floor(ones.length / 2)]!);
    }
    // Large responses: one loses its first packet (status line and headers), another a packet of its body.
    const { packets } = readPcap(MIX);
    const large = conns.flat().filter((r) => manyPackets(r) && !victims.has(r.request!.start));
    loseResponse(large[0]!);
    const [from, to] = large[1]!.response!.frames!;
    const inBody = packets.filter((p) => p.frame > from && p.frame < to && p.srcPort === large[1]!.dst.port && p.dstPort === large[1]!.src.port && p.payloadLength > 0);
    lose.push(inBody[Math.floor(inBody.length / 2)]!.frame);
    victims.set(large[1]!.request!.start, 'gap-in-body');
    const cut = await expectRecovery(MIX, lose, victims);
    const body = cut.find((r) => r.request?.start === large[1]!.request!.start)!.response!;
    expect(body.bodySize).toBe(large[1]!.response!.bodySize);
  });
});

describe('recovery after a packet missing from a pipelined capture (pipelined.pcap)', () => {
  const PIPELINED = 'pcaps/http1/pipelined.pcap';
  // Frames 6, 8, 10 and 12 carry the responses to /pipe/1 … /pipe/4, all four requests frame 4.
  const summaries = async (lose: number) => (await analyzeWithout(PIPELINED, [lose])).map((r) =>
    `${r.request?.path ?? '∅'} -> ${r.response?.status ?? '∅'} ${r.response ? r.response.frames![0] : ''}${r.incompleteReason ? ` (${r.incompleteReason})` : ''}`.replace('  ', ' '));

  // The hole may hold more than one response when requests were pipelined across it: the response
  // after it may answer any request still in flight. Those responses are held; once every request
  // left has one (the connection ended with all of them in), they pair in order.
  const cases: { lose: number; name: string; records: string[] }[] = [
    {
      lose: 8, name: 'the second response lost: the two after it are held until the connection ends, then pair from the last',
      records: ['/pipe/1 -> 200 6', '/pipe/2 -> ∅ (response-lost-in-gap)', '/pipe/3 -> 200 9', '/pipe/4 -> 200 11'],
    },
    {
      lose: 10, name: 'the third response lost: the fourth can only answer /pipe/4',
      records: ['/pipe/1 -> 200 6', '/pipe/2 -> 200 8', '/pipe/3 -> ∅ (response-lost-in-gap)', '/pipe/4 -> 200 11'],
    },
    {
      lose: 6, name: 'the first response lost: the three after it are held, one per request left, and pair in order',
      records: ['/pipe/1 -> ∅ (response-lost-in-gap)', '/pipe/2 -> 200 7', '/pipe/3 -> 200 9', '/pipe/4 -> 200 11'],
    },
  ];
  for (const c of cases) it(c.name, async () => expect(await summaries(c.lose)).toEqual(c.records));
});

describe('the pending-request queue is bounded', () => {
  const get = (path: string) => req('GET', path);
  const echo = (path: string) => resp('200 OK', ['Content-Length: 0', `X-Echo-Path: ${path}`], '');

  it(`past ${MAX_PENDING_REQUESTS} requests awaiting responses, the oldest are reported (evicted) and pairing stays right`, () => {
    const n = MAX_PENDING_REQUESTS + 100;
    const paths = Array.from({ length: n }, (_, i) => `/q${i + 1}`);
    const c = new Conversation();
    c.handshake();
    c.send(0, paths.map(get).join(''));
    c.send(1, paths.map(echo).join(''));
    c.close();
    const { records, violations } = httpRun(runSegments(c.segments));
    expect(violations['http.pending_requests']).toBe(100);
    const evicted = records.filter((r) => r.incompleteReason === 'evicted');
    // The 100 oldest requests alone, then their responses alone: none is paired with another request.
    expect(evicted.filter((r) => r.request).map((r) => r.request!.path)).toEqual(paths.slice(0, 100));
    expect(evicted.filter((r) => !r.request).map((r) => r.response!.headers['x-echo-path'])).toEqual(paths.slice(0, 100));
    const paired = records.filter((r) => r.request && r.response);
    expect(paired.map((r) => r.request!.path)).toEqual(paths.slice(100));
    for (const r of paired) expect(r.response!.headers['x-echo-path']).toBe(r.request!.path);
    expect(records).toHaveLength(n + 100);
  });

  it(`past ${MAX_PENDING_BYTES / 1024 / 1024} MiB held by requests awaiting responses, the oldest are reported`, () => {
    const body = 'b'.repeat(64 * 1024);
    const n = Math.ceil(MAX_PENDING_BYTES / body.length) + 20;
    const paths = Array.from({ length: n }, (_, i) => `/u${i + 1}`);
    const c = new Conversation();
    c.handshake();
    c.send(0, paths.map((p) => req('POST', p, [`Content-Length: ${body.length}`], body)).join(''));
    c.send(1, paths.map(echo).join(''));
    c.close();
    const { records, violations } = httpRun(runSegments(c.segments));
    const over = violations['http.pending_requests']!;
    expect(over).toBeGreaterThan(20);
    expect(over).toBeLessThan(40);
    const evicted = records.filter((r) => r.request && r.incompleteReason === 'evicted').map((r) => r.request!.path);
    expect(evicted).toEqual(paths.slice(0, over));
    for (const r of records) if (r.request && r.response) expect(r.response.headers['x-echo-path']).toBe(r.request.path);
    expect(records.filter((r) => r.request && r.response)).toHaveLength(n - over);
  });
});
