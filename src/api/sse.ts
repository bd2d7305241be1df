import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FlowRecord } from '../flows/record.js';
import type { FlowFeed } from './feed.js';

/** Bytes a slow SSE client may have waiting before events are dropped (and counted) for it. */
const MAX_PENDING = 4 * 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/**
 * `GET /api/flows/stream`: each new matching record as a Server-Sent Event (`event: flow`, the
 * record as JSON). A client too slow to keep up loses events rather than growing the agent's
 * memory; the next event it gets is preceded by `event: dropped` with how many.
 */
export function streamFlows(req: IncomingMessage, res: ServerResponse, feed: FlowFeed, filter?: (r: FlowRecord) => boolean): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  res.write(': tapwire flow stream\n\n');
  let dropped = 0;
  const unsubscribe = feed.subscribe((r) => {
    if (filter && !filter(r)) return;
    if (res.writableLength > MAX_PENDING) {
      dropped++;
      return;
    }
    if (dropped > 0) {
      res.write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`);
      dropped = 0;
    }
    res.write(`event: flow\nid: ${r.id}\ndata: ${JSON.stringify(r)}\n\n`);
  });
  const beat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
  const end = () => {
    clearInterval(beat);
    unsubscribe();
  };
  req.on('close', end);
  res.on('error', end);
}
