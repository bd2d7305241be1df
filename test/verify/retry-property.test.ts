import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FlowRecord } from '../../src/flows/record.js';
import { DETECTOR_DEFAULTS } from '../../src/verify/config.js';
import { runDetector } from '../../src/verify/detectors.js';
import { backoffPattern } from '../../src/verify/retry.js';
import type { Finding } from '../../src/verify/types.js';

/**
 * Issue 12, item 2: the retry detector read concurrent load as retries. These build flows directly:
 * times in whole microseconds from an epoch-sized base (as captures give them), one server.
 */
const BASE = 1_765_000_000;
const SERVER = { ip: '10.0.0.9', port: 8080 };
let seq = 0;

interface Call {
  ip: string;
  /** Pod name, when an identity source would know it. */
  pod?: string;
  conn: string;
  path: string;
  startUs: number;
  durUs: number;
  status: number;
  port?: number;
}

function flow(c: Call): FlowRecord {
  const start = BASE + c.startUs / 1e6, end = BASE + (c.startUs + c.durUs) / 1e6;
  return {
    id: `${c.conn}-${++seq}`, protocol: 'http', connectionId: c.conn,
    src: { ip: c.ip, port: 40000, ...(c.pod ? { name: c.pod, namespace: 'shop' } : {}) },
    dst: { ...SERVER, port: c.port ?? SERVER.port },
    start, end, durationMs: c.durUs / 1000,
    request: { method: 'GET', path: c.path, version: '1.1', start, end: start, size: 40, headers: {}, bodySize: 0 },
    response: { status: c.status, reason: '', version: '1.1', start: end, end, size: 40, headers: {}, bodySize: 0 },
  };
}

/** The values an arbitrary generates. */
type Of<A> = A extends fc.Arbitrary<infer T> ? T : never;

const retries = (flows: FlowRecord[], maxAttempts?: number): Finding[] =>
  runDetector('retry', flows, maxAttempts === undefined ? {} : { maxAttempts });

// ---- genuinely concurrent load: wrk's shape -------------------------------------------------------
// Each client keeps several keep-alive connections busy: every connection starts within the first
// millisecond, sends its next request less than a millisecond after an answer (every answer takes at
// least one), and cycles through distinct paths, /fail (always 503) among them; any other answer may
// be a 503 too. Nothing here is a retry: between two /fail of one client there is always another call
// on the connections involved, or another /fail in flight.
const OTHER_PATHS = ['/', '/items', '/items/7', '/about'];
const loadConnection = fc.record({
  offset: fc.nat(10),
  jitterUs: fc.integer({ min: 0, max: 999 }),
  requests: fc.array(fc.record({ durUs: fc.integer({ min: 1000, max: 20_000 }), gapUs: fc.integer({ min: 0, max: 999 }), fails: fc.boolean() }),
    { minLength: 1, maxLength: 40 }),
});
const loadClient = fc.record({
  others: fc.shuffledSubarray(OTHER_PATHS, { minLength: 1 }),
  failAt: fc.nat(),
  connections: fc.array(loadConnection, { minLength: 1, maxLength: 8 }),
});
const load = fc.array(loadClient, { minLength: 1, maxLength: 3 });

function loadFlows(clients: Of<typeof load>): FlowRecord[] {
  const out: FlowRecord[] = [];
  clients.forEach((c, ci) => {
    const paths = [...c.others];
    paths.splice(c.failAt % (paths.length + 1), 0, '/fail');
    c.connections.forEach((k, ki) => {
      let t = k.jitterUs;
      k.requests.forEach((r, i) => {
        const path = paths[(k.offset + i) % paths.length]!;
        out.push(flow({ ip: `10.1.0.${ci + 1}`, conn: `load${ci}-${ki}`, path, startUs: t, durUs: r.durUs, status: path === '/fail' || r.fails ? 503 : 200 }));
        t += r.durUs + r.gapUs;
      });
    });
  });
  return out;
}

// ---- any input at all ------------------------------------------------------------------------------
// Flows that overlap on one connection, zero-length exchanges, and now and then a long run of
// sequential failures (longer than the bound) on a path of its own.
const anyCall = fc.record({
  client: fc.integer({ min: 0, max: 2 }), conn: fc.integer({ min: 0, max: 3 }), path: fc.constantFrom('/a', '/fail'),
  startUs: fc.integer({ min: 0, max: 300_000 }), durUs: fc.integer({ min: 0, max: 20_000 }), fails: fc.boolean(),
});
const longRun = fc.record({
  client: fc.integer({ min: 0, max: 2 }), attempts: fc.integer({ min: 21, max: 60 }), startUs: fc.integer({ min: 0, max: 300_000 }),
  durUs: fc.integer({ min: 0, max: 5000 }), delayUs: fc.integer({ min: 0, max: 5000 }),
});

function anyFlows(calls: Of<typeof anyCall>[], run: Of<typeof longRun> | undefined): FlowRecord[] {
  const out = calls.map((c) => flow({ ip: `10.1.0.${c.client + 1}`, conn: `c${c.client}-${c.conn}`, path: c.path, startUs: c.startUs, durUs: c.durUs, status: c.fails ? 503 : 200 }));
  for (let i = 0, t = run?.startUs ?? 0; run && i < run.attempts; i++, t += run.durUs + run.delayUs) {
    out.push(flow({ ip: `10.1.0.${run.client + 1}`, conn: `long${run.client}`, path: '/again', startUs: t, durUs: run.durUs, status: 503 }));
  }
  return out;
}

// ---- a real retry schedule amid noise --------------------------------------------------------------
// Client 10.1.0.1 calls /pay, fails, waits d_i, calls again, over one to three pooled connections.
// Other clients make the same call at random times, and 10.1.0.1 also talks to another server.
const schedule = fc.record({
  attempts: fc.array(fc.record({ durUs: fc.integer({ min: 100, max: 50_000 }), delayUs: fc.integer({ min: 0, max: 3_000_000 }), conn: fc.integer({ min: 0, max: 2 }) }),
    { minLength: 2, maxLength: DETECTOR_DEFAULTS.retry.maxAttempts }),
  lastSucceeds: fc.boolean(),
  noise: fc.array(fc.record({ client: fc.integer({ min: 2, max: 3 }), conn: fc.integer({ min: 0, max: 2 }), path: fc.constantFrom('/pay', '/other'),
    startUs: fc.integer({ min: 0, max: 60_000_000 }), durUs: fc.integer({ min: 0, max: 50_000 }), fails: fc.boolean() }), { maxLength: 60 }),
  elsewhere: fc.array(fc.record({ startUs: fc.integer({ min: 0, max: 60_000_000 }), durUs: fc.integer({ min: 0, max: 50_000 }) }), { maxLength: 10 }),
});

describe('retry detector: concurrent load is not retries (issue 12)', () => {
  it('finds no retry in genuinely concurrent load: overlapping identical calls, connections cycling paths', () => {
    fc.assert(fc.property(load, (clients) => {
      expect(retries(loadFlows(clients))).toEqual([]);
    }));
  });

  it('on any input: no delay is negative, no run is longer than the bound, summaries stay short', () => {
    const bound = fc.option(fc.integer({ min: 2, max: 30 }), { nil: undefined });
    fc.assert(fc.property(fc.array(anyCall, { maxLength: 80 }), fc.option(longRun, { nil: undefined }), bound, (calls, run, maxAttempts) => {
      for (const f of retries(anyFlows(calls, run), maxAttempts)) {
        const { attempts, delaysMs } = f.details as { attempts: number; delaysMs: number[] };
        expect(delaysMs.every((d) => d >= 0), f.summary).toBe(true);
        expect(attempts).toBeGreaterThanOrEqual(2);
        expect(attempts).toBeLessThanOrEqual(maxAttempts ?? DETECTOR_DEFAULTS.retry.maxAttempts);
        expect(f.evidence).toHaveLength(attempts);
        expect(delaysMs).toHaveLength(attempts - 1);
        expect(f.summary.length).toBeLessThanOrEqual(300);
      }
    }));
  });

  it('finds a sequential retry schedule of one client, with exactly its delays, amid other clients\' identical calls', () => {
    fc.assert(fc.property(schedule, (s) => {
      const mine: FlowRecord[] = [];
      let t = 1_000_000;
      s.attempts.forEach((a, i) => {
        const last = i === s.attempts.length - 1;
        mine.push(flow({ ip: '10.1.0.1', conn: `mine-${a.conn}`, path: '/pay', startUs: t, durUs: a.durUs, status: last && s.lastSucceeds ? 200 : 503 }));
        t += a.durUs + a.delayUs;
      });
      const noise = s.noise.map((n) => flow({ ip: `10.1.0.${n.client}`, conn: `n${n.client}-${n.conn}`, path: n.path, startUs: n.startUs, durUs: n.durUs, status: n.fails ? 503 : 200 }));
      const elsewhere = s.elsewhere.map((e) => flow({ ip: '10.1.0.1', conn: 'mine-elsewhere', path: '/pay', port: 9090, startUs: e.startUs, durUs: e.durUs, status: 503 }));
      const found = retries([...noise, ...mine, ...elsewhere]);
      const ids = new Set(mine.map((r) => r.id));
      const ours = found.filter((f) => f.evidence.some((e) => ids.has(e.flowId)));
      expect(ours).toHaveLength(1);
      const [f] = ours;
      expect(f!.evidence.map((e) => e.flowId)).toEqual(mine.map((r) => r.id));
      const want = s.attempts.slice(0, -1).map((a) => a.delayUs / 1000);
      const got = f!.details.delaysMs as number[];
      expect(got).toHaveLength(want.length);
      got.forEach((d, i) => expect(Math.abs(d - want[i]!), `delay ${i}: ${d} ms, scheduled ${want[i]} ms`).toBeLessThanOrEqual(0.011));
      expect(f!.details).toMatchObject({ attempts: mine.length, succeeded: s.lastSucceeds, pattern: backoffPattern(got), client: '10.1.0.1' });
    }));
  });
});

describe('retry detector: what a retry is', () => {
  const seqOf = (n: number, o: Partial<Call> & { delayUs: number }) => Array.from({ length: n }, (_, i) => flow({
    ip: '10.1.0.1', conn: 'k', path: '/pay', durUs: 1000, status: 503, ...o, startUs: (o.startUs ?? 0) + i * (1000 + o.delayUs),
  }));

  it('a call that starts before the failed one has answered is not its retry: no negative delay', () => {
    const a = flow({ ip: '10.1.0.1', conn: 'k1', path: '/pay', startUs: 0, durUs: 5000, status: 503 });
    const b = flow({ ip: '10.1.0.1', conn: 'k2', path: '/pay', startUs: 4000, durUs: 5000, status: 200 });
    expect(retries([a, b])).toEqual([]);
  });

  it('another client\'s identical call is not a retry, and another call on the connection in between breaks the run', () => {
    const a = flow({ ip: '10.1.0.1', conn: 'k1', path: '/pay', startUs: 0, durUs: 1000, status: 503 });
    const b = flow({ ip: '10.1.0.2', conn: 'k2', path: '/pay', startUs: 2000, durUs: 1000, status: 200 });
    expect(retries([a, b])).toEqual([]);
    const other = flow({ ip: '10.1.0.1', conn: 'k1', path: '/items', startUs: 1200, durUs: 300, status: 200 });
    const c = flow({ ip: '10.1.0.1', conn: 'k1', path: '/pay', startUs: 2000, durUs: 1000, status: 200 });
    expect(retries([a, other, c])).toEqual([]);
    // The same retry without the call in between, over another pooled connection, is one.
    const d = flow({ ip: '10.1.0.1', conn: 'k3', path: '/pay', startUs: 2000, durUs: 1000, status: 200 });
    expect(retries([a, d])).toMatchObject([{ details: { attempts: 2, succeeded: true, connections: 2 } }]);
  });

  it('pods sharing a node address are told apart by name', () => {
    const pa = seqOf(4, { pod: 'pay-a', delayUs: 200_000 });
    pa[3]!.response = { ...pa[3]!.response!, status: 200 } as FlowRecord['response'];
    // pay-b, on the same address, makes the same call all along, two at a time: load, no retry.
    const pb = Array.from({ length: 10 }, (_, i) => flow({ ip: '10.1.0.1', pod: 'pay-b', conn: `b${i % 2}`, path: '/pay', startUs: i * 70_000, durUs: 100_000, status: 503 }));
    const found = retries([...pb, ...pa]);
    expect(found).toHaveLength(1);
    expect(found[0]!.details).toMatchObject({ attempts: 4, pattern: 'constant', client: 'pod shop/pay-a' });
  });

  it('a SQL statement retried in a new transaction is a retry: ROLLBACK and BEGIN between do not count', () => {
    const pg = (conn: string, query: string, startUs: number, error?: string): FlowRecord => {
      const start = BASE + startUs / 1e6, end = start + 0.001;
      return {
        id: `${conn}-${++seq}`, protocol: 'postgres', connectionId: conn, src: { ip: '10.1.0.1', port: 40000 }, dst: { ip: '10.0.0.5', port: 5432 },
        start, end, durationMs: 1,
        request: { message: 'Query', query, fingerprint: query.toLowerCase(), start, end: start, size: 40 },
        response: { start: end, end, size: 20, ...(error ? { error: { severity: 'ERROR', code: error, message: 'could not serialize access' } } : { command: 'UPDATE 1' }) },
      };
    };
    const update = 'UPDATE accounts SET balance = balance - ? WHERE id = ?';
    const flows = [0, 1, 2].flatMap((i) => {
      const t = i * 100_000;
      return [pg('p', 'BEGIN', t), pg('p', update, t + 2000, i < 2 ? '40001' : undefined), pg('p', i < 2 ? 'ROLLBACK' : 'COMMIT', t + 4000)];
    });
    expect(retries(flows)).toMatchObject([{ details: { attempts: 3, succeeded: true, pattern: 'constant' } }]);
    // Any other statement between them on the connection is a client moving on: no retry.
    expect(retries([...flows, pg('p', 'SELECT 1', 50_000)])).toMatchObject([{ details: { attempts: 2 } }]);
  });

  it('a run longer than the bound is cut there, and the rest starts a new run', () => {
    const found = retries(seqOf(45, { delayUs: 100_000 }));
    expect(found.map((f) => f.details.attempts)).toEqual([20, 20, 5]);
    expect(retries(seqOf(7, { delayUs: 100_000 }), 3).map((f) => f.details.attempts)).toEqual([3, 3]);
  });

  it('a long summary lists the first delays, then how many more', () => {
    const found = retries(seqOf(100, { delayUs: 100_000, path: `/pay?${'x'.repeat(2000)}` }), 100);
    expect(found).toHaveLength(1);
    expect(found[0]!.summary.length).toBeLessThanOrEqual(300);
    expect(found[0]!.summary).toMatch(/^100 attempts of GET \/pay\?x+…x+ on 10\.0\.0\.9:8080; retries at 0\.10 s, .*, … \d+ more \(constant: delays do not grow\); the last attempt failed too$/);
    expect((found[0]!.details.delaysMs as number[])).toHaveLength(99);
  });
});
