import { describe, expect, it } from 'vitest';
import { Conversation, type Segment } from '../helpers/bytes.js';
import { httpRun, runSegments } from '../helpers/pipeline.js';

const request = (id: number) => `POST /orders/${id} HTTP/1.1\r\nHost: shop\r\ncontent-type: application/json\r\ncontent-length: 14\r\n\r\n{"order":${String(id).padStart(4, '0')}}`;
const response = (id: number) => `HTTP/1.1 201 Created\r\nx-order: ${id}\r\ncontent-length: 2\r\n\r\nok`;

/**
 * Three exchanges whose requests go out in `mss`-byte segments; `lose` picks client data
 * segments the capture misses (their index among the client's data segments).
 */
function conversation(mss: number, lose: (i: number) => boolean, responseMss = 1460): Segment[] {
  const c = new Conversation();
  c.handshake();
  let clientData = 0;
  const dropped = new Set<Segment>();
  for (const id of [1, 2, 3]) {
    for (const s of c.send(0, request(id), mss)) if (lose(clientData++)) dropped.add(s);
    c.send(1, response(id), responseMss);
  }
  c.close(0);
  return c.segments.filter((s) => !dropped.has(s));
}

describe('protocol probing survives a gap', () => {
  it('tiny segments, the first one lost: the connection is still decoded from the next request on', () => {
    // Before the fix every 4-byte segment after the loss counted as a failed attempt, and the
    // connection was given up before the server had said a word.
    const run = httpRun(runSegments(conversation(4, (i) => i === 0)));
    const ok = run.records.filter((r) => r.request && r.response);
    expect(ok.map((r) => [r.request!.path, r.response!.headers['x-order']])).toEqual([['/orders/2', '2'], ['/orders/3', '3']]);
    expect(run.pipeline.dispatcher.stats.byProtocol).toEqual({ http: 1 });
  });

  it('tiny segments on both sides, the first of each lost', () => {
    const c = new Conversation();
    c.handshake();
    const dropped = new Set<Segment>();
    for (const id of [1, 2, 3]) {
      // The first segments lost are "POST" and "HTTP/": what follows starts no message.
      const req = c.send(0, request(id), 4);
      const resp = c.send(1, response(id), 5);
      if (id === 1) {
        dropped.add(req[0]!);
        dropped.add(resp[0]!);
      }
    }
    c.close(0);
    const run = httpRun(runSegments(c.segments.filter((s) => !dropped.has(s))));
    expect(run.pipeline.dispatcher.stats.byProtocol).toEqual({ http: 1 });
    // The first exchange lost the start of both halves: the bytes skipped may have held a request
    // sent with /orders/2, so its answer is not guessed; /orders/3 pairs, nothing pairs wrong.
    const ok = run.records.filter((r) => r.request && r.response);
    expect(ok.map((r) => [r.request!.path, r.response!.headers['x-order']])).toEqual([['/orders/3', '3']]);
    expect(run.records.find((r) => r.request?.path === '/orders/2')?.incompleteReason).toBe('response-ambiguous-after-gap');
  });

  it('a connection of unknown bytes in tiny segments is still given up, bounded', () => {
    const c = new Conversation({ serverPort: 7000 });
    c.handshake();
    for (let turn = 0; turn < 12; turn++) {
      c.send(0, Buffer.alloc(64, 0x01 + turn), 4);
      c.send(1, Buffer.alloc(64, 0x41 + turn), 4);
    }
    c.close(0);
    const run = runSegments(c.segments);
    expect(run.records).toHaveLength(0);
    expect(run.pipeline.dispatcher.stats.unknown).toBe(1);
  });
});
