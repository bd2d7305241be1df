import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coverageBody, type CoverageAnswer } from '../../src/api/coverage.js';
import type { FlowRecord, TlsFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { FlowFeed } from '../../src/service/feed.js';
import { StoreSource } from '../../src/service/store.js';
import { FlowStore } from '../../src/store/index.js';
import { serveApi } from '../helpers/serve.js';

/**
 * `GET /api/coverage` (issue 17) over a real store holding pcaps/tls/handshake-churn.pcap's flows
 * (six TLS connections from 127.0.0.29 to pricing 127.0.0.30:8443, six plaintext requests to
 * 127.0.0.29:8080) and, for the first two TLS connections, the decrypted exchange the uprobes
 * would have given (synthesized, marked as the agent marks them).
 */
let store: FlowStore, dir = '', base = '', close = async () => {};
let since = 0, until = 0;
const flows: FlowRecord[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tapwire-coverage-'));
  store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 1e9 });
  const recs = (await analyzeFile('pcaps/tls/handshake-churn.pcap')).records!;
  for (const p of recs.flatMap((f) => [f.src, f.dst])) if (p.ip === '127.0.0.30') Object.assign(p, { namespace: 'shop', workload: 'pricing', name: 'pricing-0' });
  const wire = recs.filter((f): f is TlsFlow => f.protocol === 'tls');
  const plain: FlowRecord[] = wire.slice(0, 2).map((w, i) => ({
    id: `up${i}-1`, protocol: 'http', connectionId: `up${i}`, src: w.src, dst: w.dst, start: w.end, end: w.end + 0.001, durationMs: 1,
    request: { start: w.end, end: w.end, size: 80, headers: {}, bodySize: 0, method: 'GET', path: '/price', version: '1.1' },
    response: { start: w.end + 0.001, end: w.end + 0.001, size: 60, headers: {}, bodySize: 2, status: 200, reason: 'OK', version: '1.1' },
    tls: { library: 'openssl', via: 'uprobe', pid: 31, comm: 'node' },
  }));
  for (const r of [...recs, ...plain]) { flows.push(r); store.add(r); }
  await store.sync();
  const api = await serveApi(new StoreSource(store, new FlowFeed()));
  base = api.url;
  close = api.close;
  since = Math.floor(Math.min(...flows.map((f) => f.start)));
  until = Math.ceil(Math.max(...flows.map((f) => f.start)));
});
afterAll(async () => {
  await close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const get = async (q: string) => {
  const res = await fetch(`${base}/api/coverage?${q}`);
  return { status: res.status, body: (await res.json()) as CoverageAnswer & { error?: string } };
};

describe('GET /api/coverage', () => {
  it('answers the window\'s TLS: on the wire, decrypted (by process), not decrypted with why, per server workload', async () => {
    const { status, body } = await get(`since=${since}&until=${until}`);
    expect(status).toBe(200);
    expect(body.flows).toBe(flows.length);
    expect(body.tls).toMatchObject({
      since, until, uprobes: 'seen', plaintextFlows: 6, wire: { connections: 6 }, decrypted: { connections: 2 },
      notDecrypted: { connections: 4, reasons: [{ code: 'not-probed', connections: 4 }] }, serversOmitted: 0,
    });
    expect(body.tls.servers).toEqual([{
      server: 'shop/pricing', namespace: 'shop', workload: 'pricing', plaintextFlows: 0,
      wire: { connections: 6, snis: ['pricing.test'] }, decrypted: { connections: 2 },
      notDecrypted: { connections: 4, byReason: { 'not-probed': 4 } },
      processes: [{ pid: 31, comm: 'node', library: 'openssl', connections: 2 }],
      clients: [{ client: '127.0.0.29', connections: 6, decrypted: 2, notDecrypted: 4 }],
    }]);
  });

  it('a window without flows says there is nothing, not an error', async () => {
    const { status, body } = await get(`since=${until + 3600}&until=${until + 7200}`);
    expect(status).toBe(200);
    expect(body.tls).toMatchObject({ wire: { connections: 0 }, decrypted: { connections: 0 }, uprobes: 'none-seen', servers: [] });
  });

  it('bad parameters are refused by name, as /api/workloads refuses them', async () => {
    expect((await get(`since=${until}&until=${since}`)).body.error).toBe('until is before since');
    expect((await get('since=yesterday')).status).toBe(400);
  });

  it('over a source whose pages are partial (the hub without an agent), the answer carries who is missing', async () => {
    const src = new StoreSource(store, new FlowFeed());
    const missing = { agent: 'http://10.0.0.9:8899', error: 'connect ECONNREFUSED' };
    const partial = { query: async (q: Parameters<StoreSource['query']>[0]) => ({ ...(await src.query(q)), partial: { missing: [missing] } }) };
    const a = await coverageBody(partial, new URL(`http://x/api/coverage?since=${since}&until=${until}`));
    expect(a.partial).toEqual({ missing: [missing] });
    expect(a.tls.wire.connections).toBe(6);
  });
});
