import { describe, expect, it } from 'vitest';
import { readCapture } from '../../src/capture/index.js';
import type { FlowRecord, TlsFlow } from '../../src/flows/index.js';
import { Pipeline, ServerNames } from '../../src/pipeline/index.js';
import type { ConnectionInfo } from '../../src/stream/index.js';

/**
 * The live agent marks a record it decrypted with the server name of the same connection's
 * ClientHello (`tls.sni`), known from the packet capture as soon as the hello is read: long
 * before the TLS record, which comes out at the connection's end.
 */
describe('server names from ClientHellos, by connection', () => {
  it('each TLS connection of a real capture is named as soon as its ClientHello is read, matching its record', async () => {
    const records: FlowRecord[] = [];
    // As the live recorder runs it: no reordering window, so a packet is decoded when it comes.
    const p = new Pipeline({ onRecord: (r) => records.push(r), timeOrder: { windowSec: 0 } });
    const named: string[] = [];
    // Watch the names arrive before any record: the hook runs on the ClientHello.
    await readCapture('pcaps/tls/handshake-churn.pcap', (pk) => {
      p.packet(pk);
      if (p.serverNames.size > named.length && records.length === 0) named.push(String(p.serverNames.size));
    });
    expect(named.length).toBeGreaterThan(0);
    p.finish();
    const tls = records.filter((r): r is TlsFlow => r.protocol === 'tls' && r.request?.sni !== undefined);
    expect(tls.length).toBeGreaterThan(1);
    for (const r of tls) {
      // Either end first: a probed process names its connection local → remote.
      expect(p.serverNames.of(r.src, r.dst)).toBe(r.request!.sni);
      expect(p.serverNames.of(r.dst, r.src)).toBe(r.request!.sni);
    }
  });

  it('holds a bounded number of connections, the oldest leaving first', () => {
    const names = new ServerNames();
    const conn = (port: number): ConnectionInfo => ({
      id: String(port), client: { ip: '10.0.0.1', port }, server: { ip: '10.0.0.2', port: 443 }, family: 4,
      startTime: 0, firstFrame: 0, handshakeSeen: true, midStream: false,
    });
    for (let i = 0; i < 65_537; i++) names.record(conn(i % 65_536 === 0 && i > 0 ? 65_536 : i), `h${i}`);
    expect(names.size).toBe(65_536);
    expect(names.of({ ip: '10.0.0.1', port: 0 }, { ip: '10.0.0.2', port: 443 })).toBeUndefined();
    expect(names.of({ ip: '10.0.0.2', port: 443 }, { ip: '10.0.0.1', port: 1 })).toBe('h1');
    expect(names.of({ ip: '10.0.0.1', port: 65_536 }, { ip: '10.0.0.2', port: 443 })).toBe('h65536');
  });
});
