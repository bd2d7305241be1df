/**
 * PostgreSQL under segment loss, on the real capture pcaps/loss/postgres.pcap (3 `pg` clients in
 * lockstep, one raw client pipelining 8 Bind/Execute of the named statement `echo` per Sync; every
 * row's first column names its query). Chosen TCP data segments are dropped by frame number and
 * the records compared with the clean decode, the way `npm run loss` judges them: a record none of
 * whose packets was dropped comes out exactly as before (times and ids aside), and one that lost
 * bytes says so with a reason.
 */
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCapture, type Packet } from '../../src/capture/index.js';
import { Violations } from '../../src/common/index.js';
import { Decoder, IPPROTO_TCP, TCP_SYN } from '../../src/decode/index.js';
import { isPostgres, type PgFlowRecord } from '../../src/flows/record.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import { PgSession, STATEMENT_UNKNOWN } from '../../src/protocols/postgres/session.js';
import { StatusAfterLoss } from '../../src/protocols/postgres/txstatus.js';
import type { PgExchange } from '../../src/protocols/postgres/types.js';
import type { Exchange } from '../../src/protocols/types.js';

const FILE = 'pcaps/loss/postgres.pcap';
const packets: Packet[] = [];
let clean: PgFlowRecord[] = [];

function decode(list: Packet[]): PgFlowRecord[] {
  const out: PgFlowRecord[] = [];
  const p = new Pipeline({ onRecord: (r) => { if (isPostgres(r)) out.push(r); }, frames: true });
  for (const x of list) p.packet(x);
  p.finish();
  return out;
}

const TIMES = new Set(['start', 'end', 'time', 'durationMs', 'connectMs', 'id']);
const strip = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(strip);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) if (!TIMES.has(k)) o[k] = strip((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
};
const identity = (r: PgFlowRecord) => JSON.stringify(strip(r));
const inRange = (f: number, r?: [number, number]) => r !== undefined && f >= r[0] && f <= r[1];
const idOf = (r: PgFlowRecord): string | undefined => {
  const v = r.response?.preview?.[0]?.[0] ?? r.request?.params?.[0] ?? /SELECT (\d+) AS id/.exec(r.request?.query ?? '')?.[1];
  return v === undefined || v === null ? undefined : String(v);
};

interface Verdict {
  records: PgFlowRecord[];
  /** Untouched clean records with no identical record. */
  notExact: PgFlowRecord[];
  /** Touched clean records whose stand-in (same id) is not marked incomplete. */
  unmarked: PgFlowRecord[];
  /** Records whose request and response name different ids. */
  mismatched: PgFlowRecord[];
}

/** Decodes the capture without `drop` (frame numbers) and judges it against the clean decode. */
function judge(drop: number[], list = packets): Verdict {
  const gone = new Set(drop);
  const records = decode(list.filter((p) => !gone.has(p.frame)));
  const pool = new Map<string, PgFlowRecord[]>();
  for (const r of records) pool.set(identity(r), [...(pool.get(identity(r)) ?? []), r]);
  const notExact: PgFlowRecord[] = [];
  const unmarked: PgFlowRecord[] = [];
  for (const c of clean) {
    const same = pool.get(identity(c));
    if (same?.length) {
      same.shift();
      continue;
    }
    const touched = drop.some((f) => inRange(f, c.request?.frames) || inRange(f, c.response?.frames));
    if (!touched) notExact.push(c);
    else if (records.some((r) => idOf(r) === idOf(c) && !r.incomplete)) unmarked.push(c);
  }
  const mismatched = records.filter((r) => {
    const q = r.request?.params?.[0] ?? /SELECT (\d+) AS id/.exec(r.request?.query ?? '')?.[1];
    const a = r.response?.preview?.[0]?.[0];
    return q !== undefined && a !== undefined && String(q) !== String(a);
  });
  return { records, notExact, unmarked, mismatched };
}

const byId = (v: Verdict, id: string) => v.records.filter((r) => idOf(r) === id);

describe('PostgreSQL after lost segments (pcaps/loss/postgres.pcap)', () => {
  beforeAll(async () => {
    expect(existsSync(FILE), `${FILE} (record with ONLY=loss bash scripts/record-pcaps.sh)`).toBe(true);
    await readCapture(FILE, (p) => { packets.push({ ...p, data: Buffer.from(p.data) }); });
    clean = decode(packets);
    expect(clean).toHaveLength(1460);
    expect(clean.filter((r) => r.incomplete)).toHaveLength(0);
  });

  const cleanAt = (frame: number) => clean.find((r) => r.request?.frames?.[0] === frame || r.response?.frames?.[0] === frame)!;

  it('a lost client segment (P B D E S): its answer is marked no-request-seen, the next query is exact', () => {
    const lost = cleanAt(33); // client 44194, answered in frame 34
    const v = judge([33]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.mismatched).toEqual([]);
    const [r] = byId(v, idOf(lost)!);
    expect(r!.request).toBeUndefined();
    expect(r!.incompleteReason).toBe('no-request-seen');
    // Only its own messages: the clean response's size, not that plus the Describe's RowDescription.
    expect(r!.response!.size).toBe(lost.response!.size);
  });

  it('a lost server segment: its query is marked response-lost-in-gap, the next is exact', () => {
    const lost = cleanAt(34);
    const v = judge([34]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    const [r] = byId(v, idOf(lost)!);
    expect(r!.response).toBeUndefined();
    expect(r!.incompleteReason).toBe('response-lost-in-gap');
  });

  it('a lost simple Query and the answer after it lost too: only those vanish', () => {
    const v = judge([85, 94, 114]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.mismatched).toEqual([]);
  });

  it('a lost pipelined batch (8 Bind/Execute and Sync): its 8 answers are marked, later batches do not shift', () => {
    const v = judge([35]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.mismatched).toEqual([]);
    const lost = clean.filter((r) => r.request?.frames?.[0] === 35);
    expect(lost).toHaveLength(8);
    for (const c of lost) expect(byId(v, idOf(c)!).map((r) => r.incompleteReason)).toEqual(['no-request-seen']);
  });

  it('a lost pipelined answer: its 8 Executes are marked response-lost-in-gap', () => {
    const v = judge([41]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    const lost = clean.filter((r) => r.response?.frames?.[0] === 41);
    expect(lost).toHaveLength(8);
    for (const c of lost) expect(byId(v, idOf(c)!).map((r) => r.incompleteReason)).toEqual(['response-lost-in-gap']);
  });

  it('the named statement\'s Parse lost: every Execute of it says statement-unknown and keeps its parameters and rows', () => {
    const v = judge([26]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.mismatched).toEqual([]);
    const wire = clean.filter((r) => r.request?.statement === 'echo');
    expect(wire).toHaveLength(320);
    expect(v.notExact.filter((c) => c.request?.statement !== 'echo')).toEqual([]);
    for (const c of wire) {
      const [r] = byId(v, idOf(c)!);
      expect(r!.incompleteReason).toBe(STATEMENT_UNKNOWN);
      expect(r!.request!.query).toBeUndefined();
      expect(r!.request!.params).toEqual(c.request!.params);
      expect(r!.response).toEqual(c.response);
    }
  });

  it('losses in both directions one after the other never pair a query with another\'s result', () => {
    // 44194: a request lost, an answer, an answer, a request and its answer; 44220: two batches and
    // an answer; 44202: a simple Query and its answer (both lost: it vanishes).
    const drop = [25, 34, 45, 51, 52, 40, 48, 53, 69, 74];
    const v = judge(drop);
    expect(v.mismatched).toEqual([]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.records).toHaveLength(clean.length - 2);
  });

  // Two client holes proven by one server ACK (frames 38 and 51 lost, 44's answer lost between):
  // the reassembler declares only the first (src/reassembly/tcp.ts fillHole), so the answer in
  // frame 60 reaches the session before the request in frame 59 it acknowledged, and both are
  // reported alone (marked, never mispaired). Passes once the reassembler fills every proven hole.
  it('two client holes one ACK proves: nothing mispaired, nothing unmarked', () => {
    const v = judge([25, 34, 38, 45, 51, 52]);
    expect(v.mismatched).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.notExact.every((c) => v.records.some((r) => idOf(r) === idOf(c) && r.incomplete))).toBe(true);
  });

  it('two client holes one ACK proves: the request after them still pairs with its answer', () => {
    expect(judge([25, 34, 38, 45, 51, 52]).notExact.map(idOf)).toEqual([]);
  });
});

describe('PostgreSQL after a hole inside a pipelined batch\'s answer (pcaps/loss/postgres.pcap, client 44220)', () => {
  // Frame 259 sends 8 Bind/Execute and Sync; the answer comes in frames 262 (8192 bytes: six
  // statements and the first bytes of the seventh's) and 263 (the rest, then ReadyForQuery).
  const batch = () => clean.filter((r) => r.request?.frames?.[0] === 259);

  it('the first part lost: the answers after the hole are placed by counting back from ReadyForQuery', () => {
    const v = judge([262]);
    expect(v.notExact.map(idOf)).toEqual([]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.mismatched).toEqual([]);
    const rs = batch().map((c) => byId(v, idOf(c)!)[0]!);
    expect(rs.map((r) => r.incompleteReason ?? 'exact')).toEqual([...Array<string>(6).fill('response-lost-in-gap'), 'gap', 'exact']);
  });

  it('the request and the second part lost: what arrived of the answer cut in two is still reported, marked', () => {
    const v = judge([259, 263]);
    expect(v.unmarked.map(idOf)).toEqual([]);
    expect(v.mismatched).toEqual([]);
    const cut = batch()[6]!;
    expect(cut.response!.frames).toEqual([262, 263]);
    expect(v.records.filter((r) => !r.request && r.response!.frames![0] === 262 && r.incompleteReason === 'gap')).not.toHaveLength(0);
  });
});

/** One direction's segments of a connection of the capture: stream offsets, and the peer's offset each acknowledged. */
interface Seg { dir: 0 | 1; off: number; ack: number; frame: number; time: number; bytes: Buffer }

function segmentsOf(port: number): Seg[] {
  const d = new Decoder(new Violations());
  const isn: [number, number] = [-1, -1];
  const out: Seg[] = [];
  for (const p of packets) {
    const x = d.decode(p);
    if (!x || x.proto !== IPPROTO_TCP || (x.srcPort !== port && x.dstPort !== port)) continue;
    const dir = x.srcPort === port ? 0 : 1;
    if (x.flags & TCP_SYN) { isn[dir] = (x.seq + 1) >>> 0; continue; }
    if (x.payload.length === 0) continue;
    const peer = isn[1 - dir]!;
    out.push({ dir, off: (x.seq - isn[dir]!) >>> 0, ack: peer < 0 ? -1 : (x.ack - peer) >>> 0, frame: p.frame, time: p.time, bytes: Buffer.from(x.payload) });
  }
  return out;
}

/** Feeds a PgSession the segments without `drop`, a hole before a direction's next segment, `split` cutting one segment in two. */
function feed(segs: Seg[], drop: Set<number>, split?: { frame: number; at: number }): PgExchange[] {
  const out: PgExchange[] = [];
  const conn = { id: 't', client: { ip: '127.0.0.1', port: 1 }, server: { ip: '127.0.0.1', port: 2 }, family: 4 as const, startTime: 0, firstFrame: 1, handshakeSeen: true, midStream: false };
  const s = new PgSession({
    conn, options: { bodyLimit: 1024 }, emit: <T extends Exchange>(tx: T) => { out.push(tx as unknown as PgExchange); },
    violation: () => {}, handover: () => undefined, carried: () => undefined,
  });
  const next: [number, number] = [0, 0];
  for (const g of segs) {
    if (drop.has(g.frame)) continue;
    const meta = { time: g.time, frame: g.frame, offset: next[g.dir], peerAck: g.ack };
    if (g.off > next[g.dir]) s.gap(g.dir, g.off - next[g.dir], meta);
    const cut = split?.frame === g.frame ? split.at : g.bytes.length;
    s.data(g.dir, g.bytes.subarray(0, cut), { ...meta, offset: g.off });
    if (cut < g.bytes.length) s.data(g.dir, g.bytes.subarray(cut), { ...meta, offset: g.off + cut });
    next[g.dir] = g.off + g.bytes.length;
  }
  s.end(0, 'eof');
  return out;
}

const rowId = (x: PgExchange) => x.postgres.response?.preview?.[0]?.[0];
const askId = (x: PgExchange) => x.postgres.request?.params?.[0] ?? /SELECT (\d+) AS id/.exec(x.postgres.request?.query ?? '')?.[1];

describe('PostgreSQL after a loss, with the segment after the hole cut at every byte', () => {
  const cases = [
    { port: 44194, drop: [33], after: 34 }, // a lost request: its answer, cut anywhere
    { port: 44194, drop: [34], after: 38 }, // a lost answer: the next request, cut anywhere
    { port: 44220, drop: [262], after: 263 }, // the first part of a pipelined answer lost: the rest, cut anywhere
    { port: 44220, drop: [35], after: 36 }, // a lost pipelined batch: its answers, cut anywhere
  ];
  for (const c of cases) {
    it(`${c.port}, frame${c.drop.length > 1 ? 's' : ''} ${c.drop.join(', ')} lost, frame ${c.after} cut: the same records, none mispaired`, () => {
      const segs = segmentsOf(c.port).filter((g) => g.frame <= c.after + 40);
      const whole = feed(segs, new Set(c.drop)).map((x) => JSON.stringify(x));
      const len = segs.find((g) => g.frame === c.after)!.bytes.length;
      for (let at = 1; at < len; at++) {
        const got = feed(segs, new Set(c.drop), { frame: c.after, at });
        for (const x of got) {
          const a = askId(x);
          const b = rowId(x);
          if (a !== undefined && b !== undefined) expect(String(b), `split at ${at}`).toBe(String(a));
        }
        // Records of untouched statements come out as without the cut; those the loss touched stay marked.
        const keep = (xs: string[]) => xs.filter((j) => !(JSON.parse(j) as PgExchange).incomplete);
        expect(keep(got.map((x) => JSON.stringify(x))), `split at ${at}`).toEqual(keep(whole));
      }
    });
  }
});

describe('the transaction status before the first batch after a server hole (txstatus.ts)', () => {
  const tx = (command?: string, extra: Record<string, unknown> = {}): PgExchange => ({
    protocol: 'postgres', postgres: { session: {}, ...(command !== undefined ? { response: { start: 0, end: 0, frames: [1, 1], size: 5, command, ...extra } } : {}) },
  });
  const release = (records: PgExchange[], after: 'idle' | 'transaction' | 'failed') => {
    const s = new StatusAfterLoss();
    s.lost();
    expect(s.begin()).toBe(true);
    for (const r of records) expect(s.hold(r)).toBe(true);
    const out: (string | undefined)[] = [];
    s.release(after, (x) => out.push(x.postgres.session.transaction));
    return out;
  };

  it('is told from the batch, never guessed', () => {
    expect(release([tx('SELECT 1'), tx('UPDATE 3')], 'transaction')).toEqual(['transaction', 'transaction']); // nothing changed it
    expect(release([tx('BEGIN'), tx('SELECT 1')], 'transaction')).toEqual(['idle', 'idle']);
    expect(release([tx('SELECT 1'), tx('COMMIT')], 'idle')).toEqual(['transaction', 'transaction']);
    expect(release([tx('ROLLBACK')], 'idle')).toEqual([undefined]); // from a block, failed or not
    expect(release([tx('BEGIN', { notices: [{ severity: 'WARNING', code: '25001', message: 'there is already a transaction in progress' }] })], 'transaction')).toEqual([undefined]);
    expect(release([tx('SELECT 1', { error: { severity: 'ERROR', code: '22012', message: 'division by zero' } })], 'failed')).toEqual([undefined]);
    expect(release([tx(undefined)], 'idle')).toEqual([undefined]); // a statement whose answer was lost
  });

  it('a lost answer before COMMIT: the COMMIT says it ended a transaction block (pcaps/postgres/pg-client.pcap)', async () => {
    const list: Packet[] = [];
    await readCapture('pcaps/postgres/pg-client.pcap', (p) => { list.push({ ...p, data: Buffer.from(p.data) }); });
    const all = decode(list);
    const commit = all.find((r) => r.response?.command === 'COMMIT' && r.postgres?.transaction === 'transaction')!;
    // The server segment before it carried the previous statement's answer and its ReadyForQuery.
    const before = Math.max(...all.filter((r) => r.response && r.response.frames![1] < commit.response!.frames![0]).map((r) => r.response!.frames![1]));
    const got = decode(list.filter((p) => p.frame !== before)).find((r) => r.response?.command === 'COMMIT' && r.request?.frames?.[0] === commit.request!.frames![0]);
    expect(got?.postgres?.transaction).toBe('transaction');
  });
});
