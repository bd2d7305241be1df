import { recordModule, type FlowRecord } from '../flows/index.js';
import { compareKeys, encodeCursor, type FlowKey } from '../store/index.js';
import { SourceError } from './errors.js';
import { MAX_PAGE, type FlowPage } from './query.js';

/**
 * The hub's merge of its agents' pages (hub.ts): every agent's flows in (start, id) order, merged
 * into one order, with an exchange that two agents captured kept once.
 *
 * Two captures of one exchange do not share an id: a flow id is "<connection>-<n>" and the
 * connection id hashes the capture's own time and frame number of the first packet
 * (reassembly/tcp.ts), which differ between two taps. What they do share is the connection's two
 * endpoints, the protocol, the request as sent (its call line: method and path, the gRPC path, the
 * SQL text; an HTTP/2 stream id) and, within the skew of the two clocks and the forwarding delay, the
 * start time. Copies that agree on all of these and start within `window` seconds of each other
 * are one exchange; of them the one with the most evidence is kept (complete over incomplete, with
 * a response over without), the earlier one on a tie.
 */

/** One agent's flows in start order, page by page from a cursor. */
export interface AgentPager {
  readonly agent: string;
  page(cursor: string | undefined, limit: number): Promise<FlowPage>;
}

/** What two captures of the same exchange agree on, apart from the time. */
export function exchangeKey(f: FlowRecord): string {
  const a = `${f.src.ip}|${f.src.port}`, b = `${f.dst.ip}|${f.dst.port}`;
  // The ends sorted: a capture that joined mid-connection may have guessed client and server the other way.
  const ends = a < b ? `${a}|${b}` : `${b}|${a}`;
  const stream = 'streamId' in f && f.streamId !== undefined ? f.streamId : '';
  return `${f.protocol}|${ends}|${stream}|${recordModule(f).rowCall(f) ?? ''}`;
}

/** How much evidence a copy holds: complete over incomplete, then a response, then a request. */
function evidence(f: FlowRecord): number {
  return (f.incomplete ? 0 : 4) + (f.response !== undefined ? 2 : 0) + (f.request !== undefined ? 1 : 0);
}

/** Copies of one exchange, from different agents; `best` is the one the hub returns. */
class Cluster {
  readonly agents = new Set<number>();
  best: FlowRecord;
  closed = false;

  constructor(readonly key: string, readonly first: FlowRecord, agent: number) {
    this.best = first;
    this.agents.add(agent);
  }

  add(f: FlowRecord, agent: number): void {
    this.agents.add(agent);
    const d = evidence(f) - evidence(this.best);
    if (d > 0 || (d === 0 && compareKeys(f, this.best) < 0)) this.best = f;
  }
}

/** One agent's flows as a queue: a page buffered, the next fetched when it runs out. */
class Reader {
  private buf: FlowRecord[] = [];
  private pos = 0;
  private next: string | undefined;
  private started = false;
  done = false;
  lost?: string;

  constructor(readonly index: number, readonly pager: AgentPager, private readonly from: string | undefined) {}

  get head(): FlowRecord | undefined {
    return this.buf[this.pos];
  }

  shift(): void {
    this.pos++;
  }

  get empty(): boolean {
    return !this.done && this.pos >= this.buf.length;
  }

  async fill(limit: number, failed: (agent: string, e: unknown) => void): Promise<void> {
    try {
      const p = await this.pager.page(this.started ? this.next : this.from, limit);
      this.started = true;
      this.buf = p.flows;
      this.pos = 0;
      this.next = p.next;
      if (p.lost) this.lost = this.lost ? `${this.lost}; ${p.lost}` : p.lost;
      // A page without a next is the agent's last; an empty one with a next would never end.
      if (!p.next || p.flows.length === 0) this.done = true;
    } catch (e) {
      // A bad query is bad for every agent: it is the caller's to hear, not a missing agent.
      if (e instanceof SourceError && e.kind === 'bad') throw e;
      this.done = true;
      this.buf = [];
      failed(this.pager.agent, e);
    }
  }
}

export interface MergeOptions {
  limit: number;
  /** The key the page starts after (the decoded global cursor). */
  after?: FlowKey;
  /** Seconds within which two copies of one exchange start. */
  window: number;
  /** Called once for each agent that failed; its flows are left out from there on. */
  failed: (agent: string, e: unknown) => void;
  /**
   * Flows one agent is expected to hold in the look-back before the cursor (the last page's
   * `lookback`), asked for on top of the page, so that dense traffic does not cost a second round trip.
   */
  expectLookback?: number;
}

export interface MergedPage {
  flows: FlowRecord[];
  /** More flows may follow the last one. */
  more: boolean;
  /** Each agent's own `lost`, by agent. */
  lost: { agent: string; lost: string }[];
  /** The most flows one agent returned from the look-back (at or before the cursor). */
  lookback: number;
}

/**
 * A page of the merged order after `o.after`. Each agent is read from a little before the cursor
 * (twice the window) so that the copies of an exchange that straddles the cursor are grouped
 * exactly as they were when the previous page was cut, and a copy whose twin was already returned
 * is not returned again. A group is only returned once no agent can add a copy to it (every
 * agent's next flow starts more than `window` after the group's first copy), and groups leave in
 * the key order of the copy returned, so pages join up with nothing skipped or repeated.
 */
export async function mergePage(pagers: readonly AgentPager[], o: MergeOptions): Promise<MergedPage> {
  const from = o.after ? encodeCursor({ start: o.after.start - 2 * o.window, id: '' }) : undefined;
  const readers = pagers.map((p, i) => new Reader(i, p, from));
  // Each agent is asked for a little more than the page: the look-back and the duplicates.
  const fetchLimit = Math.min(MAX_PAGE, o.limit + 64 + (o.after ? o.expectLookback ?? 0 : 0));
  const behind = readers.map(() => 0);
  /** Open groups in the order of their first copy (heads arrive in key order, so creation order is key order). */
  const open: Cluster[] = [];
  let openFrom = 0;
  const openByKey = new Map<string, Cluster[]>();
  /** Closed groups waiting for their turn, sorted by the key of the copy returned. */
  const ready: Cluster[] = [];
  const out: FlowRecord[] = [];

  const close = (c: Cluster) => {
    c.closed = true;
    const same = openByKey.get(c.key)!;
    same.splice(same.indexOf(c), 1);
    if (same.length === 0) openByKey.delete(c.key);
    let lo = 0, hi = ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(ready[mid]!.best, c.best) < 0) lo = mid + 1;
      else hi = mid;
    }
    ready.splice(lo, 0, c);
  };

  for (;;) {
    const empty = readers.filter((r) => r.empty);
    if (empty.length) await Promise.all(empty.map((r) => r.fill(fetchLimit, o.failed)));
    let h: Reader | undefined;
    for (const r of readers) if (r.head && (!h || compareKeys(r.head, h.head!) < 0)) h = r;
    const horizon = h?.head;
    // Groups no later flow can join: their first copy is more than a window before every agent's next.
    while (openFrom < open.length && (!horizon || open[openFrom]!.first.start + o.window < horizon.start)) close(open[openFrom++]!);
    if (openFrom > 1024) {
      open.splice(0, openFrom);
      openFrom = 0;
    }
    // A closed group leaves once nothing still open, or still to come, could sort before it.
    const bound = openFrom < open.length ? open[openFrom]!.first : horizon;
    let n = 0;
    while (n < ready.length && (!bound || compareKeys(ready[n]!.best, bound) < 0)) {
      const f = ready[n++]!.best;
      if (o.after && compareKeys(f, o.after) <= 0) continue;
      out.push(f);
      if (out.length === o.limit) return { flows: out, more: true, lost: lostOf(readers), lookback: Math.max(0, ...behind) };
    }
    if (n) ready.splice(0, n);
    if (!h || !horizon) break;
    h.shift();
    if (o.after && compareKeys(horizon, o.after) <= 0) behind[h.index]!++;
    const key = exchangeKey(horizon);
    let best: Cluster | undefined;
    for (const c of openByKey.get(key) ?? []) {
      const d = Math.abs(horizon.start - c.first.start);
      if (d <= o.window && !c.agents.has(h.index) && (!best || d < Math.abs(horizon.start - best.first.start))) best = c;
    }
    if (best) best.add(horizon, h.index);
    else {
      const c = new Cluster(key, horizon, h.index);
      open.push(c);
      const same = openByKey.get(key);
      if (same) same.push(c);
      else openByKey.set(key, [c]);
    }
  }
  return { flows: out, more: false, lost: lostOf(readers), lookback: Math.max(0, ...behind) };
}

function lostOf(readers: Reader[]): { agent: string; lost: string }[] {
  return readers.filter((r) => r.lost).map((r) => ({ agent: r.pager.agent, lost: r.lost! }));
}
