import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAgent } from '../helpers/serve.js';
import { workloadsBody } from '../../src/api/workloads.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { FlowFeed } from '../../src/service/feed.js';
import { StoreSource } from '../../src/service/store.js';
import type { WorkloadsAnswer } from '../../src/verify/index.js';

/**
 * `GET /api/workloads` over a real store holding the demo capture's flows, named as a Kubernetes
 * enricher would name them: order-service on node-a, payment-service and postgres on node-b; the
 * test client (127.0.0.1) has no identity.
 */
let demo: Awaited<ReturnType<typeof demoAgent>>;
let flows: FlowRecord[] = [], base = '', since = 0, until = 0;

beforeAll(async () => {
  demo = await demoAgent();
  ({ flows, since, until, url: base } = demo);
});
afterAll(async () => demo?.close());

const get = async (q: string) => {
  const res = await fetch(`${base}/api/workloads?${q}`);
  return { status: res.status, body: (await res.json()) as WorkloadsAnswer & { error?: string } };
};

describe('GET /api/workloads', () => {
  it('lists the workloads per node with flows by protocol, pods and decode coverage; TLS not yet', async () => {
    const { status, body } = await get(`since=${since}&until=${until}`);
    expect(status).toBe(200);
    expect(body.flows).toBe(flows.length);
    const count = (pred: (f: FlowRecord) => boolean) => flows.filter(pred).length;
    const at = (ip: string) => (f: FlowRecord) => f.src.ip === ip || f.dst.ip === ip;
    // Every flow touches order-service (the client calls it, it calls the others): node-a is busiest.
    expect(count(at('127.0.0.2'))).toBe(flows.length);
    const pgFlows = count(at('127.0.0.4')), payFlows = count(at('127.0.0.3'));
    expect(pgFlows).toBeGreaterThan(payFlows);
    expect(body.nodes.map((n) => [n.node, n.flows, n.workloads.map((w) => [`${w.namespace}/${w.workload}`, w.flows, w.pods])])).toEqual([
      ['node-a', flows.length, [['shop/order-service', flows.length, ['order-5d8']]]],
      // node-b: every flow touching payment or postgres, once each.
      ['node-b', count((f) => at('127.0.0.3')(f) || at('127.0.0.4')(f)), [['shop/postgres', pgFlows, ['postgres-0']], ['shop/payment-service', payFlows, ['payment-7f9c']]]],
    ]);
    const pg = body.nodes[1]!.workloads.find((w) => w.workload === 'postgres')!;
    expect(pg.byProtocol).toEqual({ postgres: count(at('127.0.0.4')) });
    expect(body.nodes[0]!.workloads[0]!.services).toEqual(['orders']);
    expect(body.complete).toBe(Math.round(((flows.length - count((f) => f.incomplete === true)) / flows.length) * 1000) / 1000);
    // Every flow has an identified end: the test client talks only to order-service.
    expect(body.unidentified.flows).toBe(0);
    expect(body.tls).toBeNull();
    expect(body.tlsNote).toMatch(/^no TLS connection in this window/);
    expect(body.undecodedNote).toMatch(/known only for a capture file/);
  });

  it('a workload that is not captured is answered in words, with the ones that are', async () => {
    const { body } = await get(`since=${since}&until=${until}&workload=cart`);
    expect(body.notCaptured).toBe(`workload "cart" is not captured in this window: none of its ${flows.length} flows names it `
      + '(its node may have no agent, its traffic may not be decoded, e.g. TLS, or it made no calls in the window). '
      + 'Captured: shop/order-service (node-a), shop/postgres (node-b), shop/payment-service (node-b).');
    // The full list stays: never a bare empty answer.
    expect(body.nodes.flatMap((n) => n.workloads)).toHaveLength(3);
    const other = (await get(`since=${since}&until=${until}&namespace=staging`)).body;
    expect(other.notCaptured).toMatch(/^any workload in namespace "staging" is not captured/);
  });

  it('asking for one that is captured narrows the answer to it', async () => {
    const { body } = await get(`since=${since}&until=${until}&workload=payment-service&namespace=shop`);
    expect(body.notCaptured).toBeUndefined();
    expect(body.nodes.map((n) => [n.node, n.workloads.map((w) => w.workload)])).toEqual([['node-b', ['payment-service']]]);
    // A pod name finds its workload too.
    expect((await get(`since=${since}&until=${until}&workload=order-5d8`)).body.nodes[0]!.workloads[0]!.workload).toBe('order-service');
  });

  it('a window without flows says nothing is captured when a workload is asked for', async () => {
    const { body } = await get(`since=${until + 3600}&until=${until + 7200}&workload=orders`);
    expect(body.flows).toBe(0);
    expect(body.notCaptured).toMatch(/No workload is captured: no flow carries an identity/);
  });

  it('bad parameters are refused by name', async () => {
    expect((await get(`since=${until}&until=${since}`)).body.error).toBe('until is before since');
    expect((await get(`since=yesterday`)).status).toBe(400);
    const long = await get(`workload=${'x'.repeat(300)}`);
    expect([long.status, long.body.error]).toEqual([400, 'workload: longer than 253 characters']);
  });

  it('over a source whose pages are partial (the hub without an agent), the answer carries who is missing', async () => {
    const src = new StoreSource(demo.store, new FlowFeed());
    const missing = { agent: 'http://10.0.0.9:8899', error: 'connect ECONNREFUSED' };
    const partial = { query: async (q: Parameters<StoreSource['query']>[0]) => ({ ...(await src.query(q)), partial: { missing: [missing] } }) };
    const a = await workloadsBody(partial, new URL(`http://x/api/workloads?since=${since}&until=${until}`));
    expect(a.partial).toEqual({ missing: [missing] });
    expect(a.flows).toBe(flows.length);
  });
});
