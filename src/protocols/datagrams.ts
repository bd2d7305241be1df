import { createHash } from 'node:crypto';
import { endpoint, type Violations } from '../common/index.js';
import type { ConnectionInfo, Dir, Endpoint } from '../stream/index.js';
import type { AnalyzerOptions, DatagramAnalyzer, DatagramMeta, DatagramSession, Exchange } from './types.js';

/** Bounds on UDP flow state: how many flows are held, and how long a quiet one lives. */
export const DATAGRAM_LIMITS = {
  maxFlows: 65_536,
  /** A UDP "flow" has no end on the wire: one idle this long is ended (DNS answers in ms). */
  idleSec: 30,
};

interface Flow {
  conn: ConnectionInfo;
  /** The datagram's sender is the flow's client (dir 0) when true. */
  clientKey: string;
  session?: DatagramSession;
  analyzer?: string;
  last: number;
}

/** One datagram as the pipeline hands it over: endpoints already written as strings. */
export interface Datagram {
  family: 4 | 6;
  src: Endpoint;
  dst: Endpoint;
  bytes: Buffer;
  meta: DatagramMeta;
}

/**
 * UDP's counterpart of the stream Dispatcher: each flow (a pair of endpoints) goes to the datagram
 * analyzer whose probe recognises its first datagram, by content, not port; the flow's later
 * datagrams go to that session with their direction. A flow no analyzer takes is not held: the
 * caller counts it as not decoded. Wire input never throws out of a session: a throw becomes a
 * counted violation and ends that flow's decoding.
 */
export class DatagramDispatcher {
  private readonly flows = new Map<string, Flow>();
  /** Flows no analyzer took, remembered so later datagrams are not probed again (bounded). */
  private readonly declined = new Set<string>();
  readonly stats = { byProtocol: {} as Record<string, number>, evicted: 0 };

  constructor(
    private readonly analyzers: readonly DatagramAnalyzer[],
    private readonly options: AnalyzerOptions,
    private readonly violations: Violations,
    private readonly onExchange: (tx: Exchange, conn: ConnectionInfo) => void,
  ) {}

  /** Whether any analyzer reads datagrams: without one the pipeline skips this path entirely. */
  get active(): boolean {
    return this.analyzers.length > 0;
  }

  /** Returns true when a protocol took this datagram's flow, false when nobody decodes it. */
  datagram(d: Datagram): boolean {
    const a = endpoint(d.src), b = endpoint(d.dst);
    const key = a < b ? `${a} ${b}` : `${b} ${a}`;
    let flow = this.flows.get(key);
    if (!flow) {
      if (this.declined.has(key)) return false;
      flow = this.start(key, a, d);
      if (!flow) return false;
    }
    flow.last = d.meta.time;
    const dir: Dir = a === flow.clientKey ? 0 : 1;
    const session = flow.session;
    if (session) this.guard(flow, () => session.datagram(dir, d.bytes, d.meta));
    return true;
  }

  /** Ends flows idle since before `nowSec` (capture clock). */
  tick(nowSec: number): void {
    for (const [key, f] of this.flows) {
      if (nowSec - f.last >= DATAGRAM_LIMITS.idleSec) this.end(key, f, nowSec);
    }
  }

  /** The capture ended: every flow ends. */
  finish(): void {
    for (const [key, f] of this.flows) this.end(key, f, f.last);
  }

  private start(key: string, sender: string, d: Datagram): Flow | undefined {
    for (const an of this.analyzers) {
      const r = an.probe(d.bytes);
      if (r === 'no') continue;
      const [client, server] = r === 'match' ? [d.src, d.dst] : [d.dst, d.src];
      const conn: ConnectionInfo = {
        id: createHash('sha1').update(`udp|${client.ip}|${client.port}|${server.ip}|${server.port}|${d.meta.time}|${d.meta.frame}`).digest('hex').slice(0, 12),
        client: { ...client }, server: { ...server }, family: d.family,
        startTime: d.meta.time, firstFrame: d.meta.frame, handshakeSeen: false, midStream: false,
      };
      const flow: Flow = { conn, clientKey: r === 'match' ? sender : endpoint(d.dst), analyzer: an.name, last: d.meta.time };
      flow.session = an.createSession({
        conn, options: this.options,
        emit: (tx) => this.onExchange(tx, conn),
        violation: (code, reason) => this.violations.add(code, `udp ${endpoint(conn.client)} → ${endpoint(conn.server)}: ${reason}`),
      });
      this.stats.byProtocol[an.name] = (this.stats.byProtocol[an.name] ?? 0) + 1;
      this.flows.set(key, flow);
      if (this.flows.size > DATAGRAM_LIMITS.maxFlows) this.evictOldest();
      return flow;
    }
    this.declined.add(key);
    if (this.declined.size > DATAGRAM_LIMITS.maxFlows) this.declined.delete(this.declined.values().next().value!);
    return undefined;
  }

  private evictOldest(): void {
    const [key, f] = this.flows.entries().next().value!;
    this.stats.evicted++;
    this.end(key, f, f.last);
  }

  private end(key: string, f: Flow, time: number): void {
    this.flows.delete(key);
    const session = f.session;
    if (session) this.guard(f, () => session.end(time));
  }

  private guard(f: Flow, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.violations.add('decoder.internal_error', `${f.analyzer} on udp ${endpoint(f.conn.client)} → ${endpoint(f.conn.server)} stopped: ${err instanceof Error ? err.message : String(err)}`);
      f.session = undefined;
    }
  }
}
