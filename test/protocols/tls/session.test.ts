import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TLS_INCOMPLETE } from '../../../src/protocols/tls/session.js';
import {
  CCS, CH, HRR_RANDOM, SH, alpn, appData, ext, handshake, record, runSession, selected, sigAlgs, sni, u16, u8, vec, versions, clientHelloBody,
  type Result, type Step,
} from './build.js';

/** What a run says, without frame numbers (they count the pieces a split made). */
function view(r: Result): unknown {
  return {
    violations: r.violations.map((v) => v.code),
    exchanges: r.exchanges.map((x) => JSON.parse(JSON.stringify(x, (k, v: unknown) => (k === 'frames' ? undefined : v))) as unknown),
  };
}

/** Runs the steps whole, then with every step cut at every byte, and once with every byte on its own: all must agree. */
function everySplit(steps: Step[]): Result {
  const whole = runSession(steps);
  const expected = view(whole);
  steps.forEach((s, i) => {
    for (let c = 1; c < s.bytes.length; c++) expect(view(runSession(steps, (j) => (j === i ? [c] : []))), `step ${i} cut at ${c}`).toEqual(expected);
  });
  expect(view(runSession(steps, (_j, len) => Array.from({ length: len }, (_x, k) => k)))).toEqual(expected);
  return whole;
}

const TLS13_CH = CH({
  sessionId: Buffer.alloc(32, 1), ciphers: [0x1301, 0x1302, 0x1303],
  extensions: [sni('api.example'), alpn('h2', 'http/1.1'), versions(0x0a0a, 0x0304, 0x0303), sigAlgs(0x0403, 0x0804), ext(51, vec(2, u16(29), vec(2, Buffer.alloc(32, 3))))],
});

function tls13(resume = false): Step[] {
  return [
    { dir: 0, time: 1, bytes: TLS13_CH },
    { dir: 1, time: 2, bytes: Buffer.concat([SH({ sessionId: Buffer.alloc(32, 1), cipher: 0x1301, extensions: [selected(0x0304), ...(resume ? [ext(41, u16(0))] : [])] }), CCS, appData(800)]) },
    { dir: 0, time: 3, bytes: Buffer.concat([CCS, appData(53), appData(100)]) },
    { dir: 1, time: 4, bytes: appData(300) },
  ];
}

describe('TLS session', () => {
  it('TLS 1.3: SNI, ALPN, versions, cipher, handshake time to the client Finished, bytes after it', () => {
    const r = everySplit(tls13());
    expect(r.violations).toEqual([]);
    expect(r.exchanges).toHaveLength(1);
    const t = r.exchanges[0]!.tls;
    expect(r.exchanges[0]!.incomplete).toBeUndefined();
    expect(t.clientHello).toMatchObject({ sni: 'api.example', alpn: ['h2', 'http/1.1'], versions: [0x0a0a, 0x0304, 0x0303], ciphers: [0x1301, 0x1302, 0x1303], extensions: [0, 16, 43, 13, 51], signatureAlgorithms: [0x0403, 0x0804], sessionIdLength: 32, psk: false });
    expect(t.clientHello!.ja4).toMatch(/^t13d0305h2_/);
    expect(t.serverHello).toMatchObject({ selectedVersion: 0x0304, cipher: 0x1301, psk: false, helloRetry: false });
    expect(t.resumed).toBe(false);
    expect(t.handshakeEnd).toBe(3);
    expect(t.bytes).toEqual({ toServer: 100, toClient: 300 });
  });

  it('TLS 1.3 resumed: pre_shared_key in the ServerHello', () => {
    expect(everySplit(tls13(true)).exchanges[0]!.tls.resumed).toBe(true);
  });

  const CERT = handshake(11, Buffer.alloc(600, 0x30)), SKE = handshake(12, Buffer.alloc(100, 1)), SHD = handshake(14, Buffer.alloc(0));
  const FIN = record(22, Buffer.alloc(40, 0xf1));

  it('TLS 1.2 full handshake: Certificate after the ServerHello, ALPN chosen, end at the client Finished after its ChangeCipherSpec', () => {
    const r = everySplit([
      { dir: 0, time: 1, bytes: CH({ ciphers: [0xc02f, 0xc030], extensions: [sni('a.test'), alpn('h2', 'http/1.1')] }) },
      { dir: 1, time: 2, bytes: Buffer.concat([record(22, Buffer.concat([handshake(2, Buffer.concat([u16(0x0303), Buffer.alloc(32, 9), vec(1), u16(0xc02f), u8(0), vec(2, alpn('http/1.1'))])), CERT, SKE, SHD]))]) },
      { dir: 0, time: 3, bytes: Buffer.concat([record(22, handshake(16, Buffer.alloc(33, 4))), CCS, FIN]) },
      { dir: 1, time: 4, bytes: Buffer.concat([CCS, FIN]) },
      { dir: 0, time: 5, bytes: appData(200) },
      { dir: 1, time: 6, bytes: appData(500) },
    ]);
    const t = r.exchanges[0]!.tls;
    expect(r.violations).toEqual([]);
    expect(t.serverHello).toMatchObject({ cipher: 0xc02f, alpn: 'http/1.1' });
    expect(t.serverHello!.selectedVersion).toBeUndefined();
    expect(t.resumed).toBe(false);
    expect(t.handshakeEnd).toBe(3);
    expect(t.bytes).toEqual({ toServer: 200, toClient: 500 });
  });

  it('TLS 1.2 resumed by session id: the server echoes the id', () => {
    const sid = Buffer.alloc(32, 0x5a);
    const r = everySplit([
      { dir: 0, time: 1, bytes: CH({ sessionId: sid, ciphers: [0xc02f] }) },
      { dir: 1, time: 2, bytes: Buffer.concat([SH({ sessionId: sid, cipher: 0xc02f }), CCS, FIN]) },
      { dir: 0, time: 3, bytes: Buffer.concat([CCS, FIN, appData(10)]) },
    ]);
    expect(r.exchanges[0]!.tls).toMatchObject({ resumed: true, handshakeEnd: 3, bytes: { toServer: 10, toClient: 0 } });
  });

  it('TLS 1.2 resumed by ticket: NewSessionTicket and ChangeCipherSpec, no Certificate', () => {
    const r = everySplit([
      { dir: 0, time: 1, bytes: CH({ ciphers: [0xc02f], extensions: [ext(35, Buffer.alloc(100, 2))] }) },
      { dir: 1, time: 2, bytes: Buffer.concat([SH({ cipher: 0xc02f, extensions: [ext(35, Buffer.alloc(0))] }), record(22, handshake(4, Buffer.alloc(150, 6))), CCS, FIN]) },
      { dir: 0, time: 3, bytes: Buffer.concat([CCS, FIN]) },
    ]);
    expect(r.exchanges[0]!.tls.clientHello!.ticket).toBe(true);
    expect(r.exchanges[0]!.tls.resumed).toBe(true);
  });

  it('a HelloRetryRequest, a second ClientHello after a compatibility ChangeCipherSpec, then the ServerHello', () => {
    const r = everySplit([
      { dir: 0, time: 1, bytes: TLS13_CH },
      { dir: 1, time: 2, bytes: Buffer.concat([SH({ random: HRR_RANDOM, cipher: 0x1302, extensions: [selected(0x0304), ext(51, u16(24))] }), CCS]) },
      { dir: 0, time: 3, bytes: Buffer.concat([CCS, TLS13_CH]) },
      { dir: 1, time: 4, bytes: Buffer.concat([SH({ cipher: 0x1302, extensions: [selected(0x0304)] }), appData(900)]) },
      { dir: 0, time: 5, bytes: appData(53) },
    ]);
    const t = r.exchanges[0]!.tls;
    expect(t.helloRetry).toBe(true);
    expect(t.serverHello!.cipher).toBe(0x1302);
    expect(t.clientHello!.at.start).toBe(1);
    expect(t.handshakeEnd).toBe(5);
  });

  it('a ClientHello split over two records (RFC 8446 §5.1 allows it)', () => {
    const hs = handshake(1, clientHelloBody({ ciphers: [0x1301], extensions: [sni('split.test'), versions(0x0304)] }));
    const r = everySplit([
      { dir: 0, time: 1, bytes: Buffer.concat([record(22, hs.subarray(0, 20)), record(22, hs.subarray(20))]) },
      { dir: 1, time: 2, bytes: SH({ cipher: 0x1301, extensions: [selected(0x0304)] }) },
    ]);
    expect(r.exchanges[0]!.tls.clientHello!.sni).toBe('split.test');
    expect(r.exchanges[0]!.tls.clientHello!.at.size).toBe(hs.length);
  });

  it('no ServerHello: incomplete, no-server-hello', () => {
    const r = runSession([{ dir: 0, time: 1, bytes: TLS13_CH }]);
    expect(r.exchanges[0]!.incomplete).toBe(TLS_INCOMPLETE.noServerHello);
  });

  it('a fatal alert in clear instead of a ServerHello', () => {
    const r = everySplit([{ dir: 0, time: 1, bytes: TLS13_CH }, { dir: 1, time: 2, bytes: record(21, u8(2, 40)) }]);
    expect(r.exchanges[0]!.tls.alert).toEqual({ level: 'fatal', description: 'handshake_failure', by: 'server' });
    expect(r.exchanges[0]!.incomplete).toBe('no-server-hello');
  });

  it('a gap before the handshake ended, and one after it', () => {
    const s = tls13();
    const before = runSession([s[0]!, { dir: 0, gap: 10, time: 1.5 }, s[1]!, s[2]!, s[3]!]);
    expect(before.exchanges[0]!.incomplete).toBe(TLS_INCOMPLETE.gapInHandshake);
    const after = runSession([...s, { dir: 1, gap: 10, time: 5 }, { dir: 1, time: 6, bytes: appData(5) }]);
    expect(after.exchanges[0]!.incomplete).toBe(TLS_INCOMPLETE.gapInData);
    expect(after.exchanges[0]!.tls.bytes.toClient).toBe(300);
  });

  it('a server that does not speak TLS: a violation with its offset, and no throw', () => {
    const r = runSession([{ dir: 0, time: 1, bytes: TLS13_CH }, { dir: 1, time: 2, bytes: Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n') }]);
    expect(r.violations).toEqual([expect.objectContaining({ code: 'tls.bad_record', offset: 0 })]);
    expect(r.exchanges[0]!.incomplete).toBe('no-server-hello');
  });

  it('a malformed ClientHello (a 40-byte session id) is a counted violation, never a throw', () => {
    const body = clientHelloBody({ ciphers: [0x1301] });
    body[34] = 40;
    const r = everySplit([{ dir: 0, time: 1, bytes: record(22, handshake(1, body)) }]);
    expect(r.violations.map((v) => v.code)).toEqual(['tls.bad_client_hello']);
    expect(r.exchanges[0]!.incomplete).toBe(TLS_INCOMPLETE.badClientHello);
  });

  it('a handshake message longer than the limit is reported, not held', () => {
    const h = Buffer.from([22, 3, 3, 0, 4, 1, 0x10, 0, 0]);
    const r = runSession([{ dir: 0, time: 1, bytes: h }]);
    expect(r.violations.map((v) => v.code)).toEqual(['tls.handshake_too_long']);
  });
});

describe('TLS session under fast-check', () => {
  it('never throws on arbitrary bytes either way, and emits at most one exchange', () => {
    fc.assert(fc.property(fc.array(fc.record({ dir: fc.constantFrom(0 as const, 1 as const), bytes: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 12 }), (chunks) => {
      const steps: Step[] = [{ dir: 0, time: 0, bytes: TLS13_CH }, ...chunks.filter((c) => c.bytes.length).map((c, i) => ({ dir: c.dir, time: i + 1, bytes: Buffer.from(c.bytes) }))];
      const r = runSession(steps);
      expect(r.exchanges.length).toBeLessThanOrEqual(1);
    }), { numRuns: 300 });
  });

  it('a valid conversation split anywhere gives the same record', () => {
    const steps = tls13(true);
    const expected = view(runSession(steps));
    fc.assert(fc.property(fc.array(fc.array(fc.nat({ max: 1200 }), { maxLength: 6 }), { minLength: steps.length, maxLength: steps.length }), (cuts) => {
      expect(view(runSession(steps, (i) => cuts[i]!))).toEqual(expected);
    }), { numRuns: 200 });
  });

  it('a ClientHello with one byte changed never throws, and any violation is a tls one', () => {
    fc.assert(fc.property(fc.nat({ max: TLS13_CH.length - 1 }), fc.integer({ min: 0, max: 255 }), (at, v) => {
      const b = Buffer.from(TLS13_CH);
      b[at] = v;
      const r = runSession([{ dir: 0, time: 1, bytes: b }, ...tls13().slice(1)]);
      for (const x of r.violations) expect(x.code).toMatch(/^tls\./);
    }), { numRuns: 500 });
  });
});
