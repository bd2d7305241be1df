import { execFileSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveCaptureUnavailable } from '../../src/capture/live.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { markerTarget } from '../../src/live/barrier.js';
import { Recorder } from '../../src/live/recorder.js';
import { SimNode } from '../agent/netns.js';
import { only } from '../helpers/records.js';

const root = process.getuid?.() === 0;
const why = !root ? 'live capture needs root' : liveCaptureUnavailable();
if (why) console.log(`skipping Recorder drain tests: ${why}`);

/** N sequential GETs on one keep-alive connection; resolves when the last response has been read. */
async function get(host: string, port: number, n: number): Promise<void> {
  const { Agent } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      request({ host, port, path: `/item/${i}`, agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject).end();
    });
  }
  agent.destroy();
}

function server(host: string): Promise<Server> {
  const s = createServer((req, res) => res.end(`ok ${req.url}`));
  return new Promise((r) => s.listen(0, host, () => r(s)));
}

describe.skipIf(why !== '')('Recorder.drain: every exchange sent before the call is out, without a sleep', () => {
  it('on lo: 200 requests, drained the moment the client has its last response', async () => {
    const s = await server('127.0.0.1');
    const port = (s.address() as AddressInfo).port;
    const got: FlowRecord[] = [];
    let udp = 0;
    const rec = Recorder.start({
      interfaces: ['lo'], filter: `tcp port ${port}`, bodyLimit: 1024, onRecord: (r) => got.push(r),
      // lo frames are Ethernet: the IPv4 protocol byte is at 14 + 9.
      onPacket: (p) => { if (p.data[23] === 17) udp++; },
    });
    try {
      await get('127.0.0.1', port, 200);
      const d = await rec.drain();
      // Nothing waited: the records are out because the marker came after the last response.
      expect(d.proven).toBe(true);
      expect(only(got, 'http').map((r) => r.request?.path)).toEqual(Array.from({ length: 200 }, (_, i) => `/item/${i}`));
      // The marker passed the TCP-only filter but is not traffic: it never reaches the pipeline.
      expect(udp).toBe(0);
      expect(rec.pipeline.violations.counts.size).toBe(0);
    } finally {
      rec.stop();
      s.close();
    }
  });

  describe('on a bridge (pods in network namespaces)', () => {
    let node: SimNode | undefined;
    beforeAll(async () => {
      node = new SimNode(1);
      await node.run(0, [process.execPath, '-e', "require('http').createServer((q,s)=>s.end('pod '+q.url)).listen(8080,()=>console.log('ready'))"], /ready/);
    });
    afterAll(() => node?.down());

    it('proves the drain with a marker sent to the bridge subnet\'s broadcast address', async () => {
      expect(markerTarget(node!.bridge)).toBe(node!.subnet.replace(/\.0\/24$/, '.255'));
      const got: FlowRecord[] = [];
      const rec = Recorder.start({ interfaces: [node!.bridge], filter: 'tcp port 8080', bodyLimit: 1024, onRecord: (r) => got.push(r) });
      try {
        await get(node!.pods[0]!.ip, 8080, 50);
        const d = await rec.drain();
        expect(d.proven).toBe(true);
        expect(got).toHaveLength(50);
        expect(only(got, 'http').every((r) => r.response?.status === 200)).toBe(true);
      } finally {
        rec.stop();
      }
    });

    it('says the drain is unproven on an interface no address routes through (a bare veth), and still releases records', async () => {
      const veth = execFileSync('ip', ['-o', 'link', 'show', 'master', node!.bridge], { encoding: 'utf8' }).split(':')[1]!.trim().split('@')[0]!;
      expect(markerTarget(veth)).toBeUndefined();
      const got: FlowRecord[] = [];
      const rec = Recorder.start({ interfaces: [veth], filter: 'tcp port 8080', bodyLimit: 1024, onRecord: (r) => got.push(r) });
      try {
        await get(node!.pods[0]!.ip, 8080, 20);
        const d = await rec.drain();
        expect(d.proven).toBe(false);
        expect(got).toHaveLength(20);
      } finally {
        rec.stop();
      }
    });
  });
});
