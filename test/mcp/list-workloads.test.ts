import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoAgent } from '../helpers/serve.js';
import type { FlowRecord } from '../../src/flows/record.js';
import type { WorkloadsAnswer } from '../../src/verify/index.js';
import { connect, DEMO, text } from './helpers.js';

/**
 * list_workloads through the MCP server, over an agent (its HTTP API over a real store holding the
 * demo's flows with Kubernetes-style identities) and over a capture file that carries none.
 */
let demo: Awaited<ReturnType<typeof demoAgent>>;
let flows: FlowRecord[] = [], since = 0, until = 0;
let agent: Awaited<ReturnType<typeof connect>>, offline: Awaited<ReturnType<typeof connect>>;

beforeAll(async () => {
  demo = await demoAgent();
  ({ flows, since, until } = demo);
  agent = await connect({ api: demo.url });
  offline = await connect();
});
afterAll(async () => {
  await agent?.close();
  await offline?.close();
  await demo?.close();
});

/** The SDK client checks structuredContent against the tool's output schema (tools were listed by connect). */
async function call(t: typeof agent, args: Record<string, unknown>): Promise<{ r: CallToolResult; a: WorkloadsAnswer }> {
  const r = (await t.client.callTool({ name: 'list_workloads', arguments: args })) as CallToolResult;
  expect(r.isError, text(r)).toBeFalsy();
  return { r, a: r.structuredContent as unknown as WorkloadsAnswer };
}

describe('list_workloads', () => {
  it('is listed with its schemas', () => {
    const t = agent.tools.find((x) => x.name === 'list_workloads');
    expect(t?.outputSchema?.type).toBe('object');
    expect(t?.description).toMatch(/not captured/);
  });

  it('over an agent: per node, the workloads with their flows by protocol, pods and coverage, in the text too', async () => {
    const { r, a } = await call(agent, { since: String(since), until: String(until) });
    expect(a.nodes.map((n) => [n.node, n.workloads.map((w) => w.workload)])).toEqual([['node-a', ['order-service']], ['node-b', ['postgres', 'payment-service']]]);
    expect(a.tls).toBeNull();
    const lines = text(r).split('\n');
    expect(lines[0]).toBe(`${flows.length} flows read, ${Math.round(a.complete * 1000) / 10}% with whole evidence; 2 nodes`);
    expect(lines).toContain(`node node-a: ${flows.length} flows (${Object.entries(a.nodes[0]!.byProtocol).map(([k, n]) => `${k} ${n}`).join(', ')}), ${a.nodes[0]!.incomplete} incomplete`);
    expect(lines.some((l) => /^ {2}shop\/postgres: \d+ flows \(postgres \d+\), \d+ incomplete.*; pods postgres-0$/.test(l))).toBe(true);
    expect(lines).toContain('not decoded: traffic not decoded is known only for a capture file: an agent\'s API does not say');
    expect(lines.some((l) => l.startsWith('TLS: no TLS connection in this window'))).toBe(true);
  });

  it('a workload that is not captured: says so, and which are, instead of an empty list', async () => {
    const { r, a } = await call(agent, { since: String(since), until: String(until), workload: 'cart', namespace: 'shop' });
    expect(text(r).split('\n')[0]).toBe(`workload "cart" in namespace "shop" is not captured in this window: none of its ${flows.length} flows names it `
      + '(its node may have no agent, its traffic may not be decoded, e.g. TLS, or it made no calls in the window). '
      + 'Captured: shop/order-service (node-a), shop/postgres (node-b), shop/payment-service (node-b).');
    expect(a.notCaptured).toBe(text(r).split('\n')[0]);
    expect(a.nodes.flatMap((n) => n.workloads)).toHaveLength(3);
    // One that is captured narrows the answer, with no such sentence.
    const hit = await call(agent, { since: String(since), until: String(until), workload: 'payment-service' });
    expect(hit.a.notCaptured).toBeUndefined();
    expect(hit.a.nodes.map((n) => n.workloads.map((w) => w.workload))).toEqual([['payment-service']]);
  });

  it('over a capture file without identities: nothing is captured by name, and the file\'s undecoded traffic is counted', async () => {
    const { r, a } = await call(offline, { capture: DEMO, workload: 'orders' });
    expect(a.nodes).toEqual([]);
    expect(a.unidentified.flows).toBe(a.flows);
    expect(a.undecoded).toBeDefined();
    expect(text(r)).toMatch(/^workload "orders" is not captured in this window: none of its 29 flows names it .*No workload is captured: no flow carries an identity \(is --kubernetes or --identities set\?\)\.\n/);
  });
});
