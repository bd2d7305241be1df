import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Watcher } from '../watch/index.js';
import { z } from 'zod';
import { notFound } from './errors.js';
import { parsed, wholeNumber } from './params.js';
import { serveEvents } from './sse.js';

/**
 * The standing specs' verdicts (`tapwire agent --spec`): `GET /api/verdicts` lists where each spec
 * stands and the recent changes; `GET /api/verdicts/stream` tells each change as it happens, so a
 * client that just redeployed hears "now FAILING" without asking.
 */

function need(watcher: Watcher | undefined): Watcher {
  if (!watcher) throw notFound('no standing specs: start the agent with --spec FILE');
  return watcher;
}

/** `after`: only changes with a greater seq (what a poller saw last). */
function afterParam(v: string | null | undefined): number {
  if (v === null || v === undefined || v === '') return 0;
  return parsed(z.object({ after: wholeNumber(' (a change\'s seq)') }), { after: v }, '').after;
}

/** `GET /api/verdicts[?after=seq]` → `{ window, specs, changes }`. */
export function verdictsBody(watcher: Watcher | undefined, url: URL) {
  const w = need(watcher);
  return { window: w.windowSec, specs: w.current(), changes: w.changes(afterParam(url.searchParams.get('after'))) };
}

/**
 * `GET /api/verdicts/stream`: `event: current` with every spec's state, then `event: change` for
 * each change (id: its seq). A reconnecting client that sends Last-Event-ID first gets the
 * changes it missed (those still kept).
 */
export function streamVerdicts(req: IncomingMessage, res: ServerResponse, watcher: Watcher | undefined): void {
  const w = need(watcher);
  // An id this stream never sent is ignored: the client still gets the current state first.
  const last = req.headers['last-event-id'];
  const missedAfter = typeof last === 'string' && /^\d+$/.test(last) ? Number(last) : undefined;
  serveEvents(req, res, 'tapwire verdict stream', (send) => {
    send('current', { window: w.windowSec, specs: w.current() });
    if (missedAfter !== undefined) for (const c of w.changes(missedAfter)) send('change', c, c.seq);
    return w.subscribe((c) => send('change', c, c.seq));
  });
}
