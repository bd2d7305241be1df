import type { IncomingMessage, ServerResponse } from 'node:http';
import { predicateOf, type FlowSource } from '../service/index.js';

/** Bytes a slow SSE client may have waiting before events are dropped (and counted) for it. */
const MAX_PENDING = 4 * 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/** Writes one event (its data as JSON on one line), or drops it for a client that is behind. */
export type SendEvent = (event: string, data: unknown, id?: string | number) => void;

/**
 * An event stream to one client: the SSE headers, an opening comment, heartbeats, and the
 * slow-client rule every stream of the agent keeps. A client too slow to keep up loses events
 * rather than growing the agent's memory; the next event it gets is preceded by `event: dropped`
 * with how many. `attach` subscribes to whatever feeds the stream and returns how to unsubscribe,
 * which happens when the client goes away.
 */
export function serveEvents(req: IncomingMessage, res: ServerResponse, opening: string, attach: (send: SendEvent) => () => void): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(`: ${opening}\n\n`);
  let dropped = 0;
  const send: SendEvent = (event, data, id) => {
    if (res.writableLength > MAX_PENDING) {
      dropped++;
      return;
    }
    if (dropped > 0) {
      res.write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`);
      dropped = 0;
    }
    res.write(`event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`);
  };
  const detach = attach(send);
  const beat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
  const end = () => {
    clearInterval(beat);
    detach();
  };
  req.on('close', end);
  res.on('error', end);
}

/**
 * `GET /api/flows/stream`: each new matching record as a Server-Sent Event (`event: flow`, the
 * record as JSON), from the source's stream of new flows. A filter that does not compile is refused
 * before the stream opens.
 */
export async function streamFlows(req: IncomingMessage, res: ServerResponse, source: FlowSource, filter?: string): Promise<void> {
  predicateOf(filter);
  const sub = await source.subscribe((e) => {
    if ('flow' in e) send?.('flow', e.flow, e.flow.id);
    else send?.('dropped', { dropped: e.dropped });
  }, { filter });
  let send: SendEvent | undefined;
  serveEvents(req, res, 'tapwire flow stream', (s) => {
    send = s;
    return () => sub.close();
  });
  // An upstream that ends (an agent's stream) ends this one.
  sub.ended.then(() => res.end(), () => res.end());
}
