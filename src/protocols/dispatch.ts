import { endpoint, type Violations } from '../common/index.js';
import type { CloseReason, ConnectionInfo, Dir, StreamHandler, StreamMeta } from '../stream/index.js';
import type { AnalyzerOptions, Exchange, ProtocolAnalyzer, ProtocolSession, SessionContext } from './types.js';
import { recognizeTcp } from './recognize.js';
import { CARRIED } from './registry.js';

/** First bytes per direction that recognize.ts looks at to name an undecoded protocol. */
const RECOGNIZE_BYTES = 512;

/** Bounds on content detection: how long a connection may stay unidentified. */
export const PROBE_LIMITS = {
  /**
   * Turns (a direction speaking after the other one did, or first) whose first segment started
   * no message, per direction, before giving up on a connection.
   */
  maxAttemptsPerDir: 8,
  /** Segment starts tried per connection in all, within turns too. */
  maxProbes: 512,
  /** Bytes held per connection while no analyzer has said yes. */
  maxHeldBytes: 64 * 1024,
};

interface HeldItem {
  dir: Dir;
  bytes: Buffer | undefined; // undefined: a gap of `len` bytes
  len: number;
  meta: StreamMeta;
  /** The first bytes of a turn: this direction speaking first, or after the other one did. */
  turn: boolean;
}

interface ConnState {
  conn: ConnectionInfo;
  session?: ProtocolSession;
  protocol?: string;
  /** Client and server were swapped by content: reassembly's dir 0 is our dir 1. */
  flipped: boolean;
  rejected: boolean;
  /** Everything seen before identification, in arrival order, replayed to the session. */
  held: HeldItem[];
  heldBytes: number;
  /** Per direction: index in `held` where the current probe attempt starts, and attempts made. */
  probeFrom: [number, number];
  attempts: [number, number];
  /** Probes tried in all, and the direction of the last bytes held (-1: none yet). */
  probes: number;
  lastDir: Dir | -1;
}

export interface DispatchStats {
  /** Connections identified, by protocol. */
  byProtocol: Record<string, number>;
  /** Connections no analyzer recognised (those in `undecoded`, and the `empty` ones). */
  unknown: number;
  transactions: number;
  /**
   * Connections that carried payload no analyzer decoded, by why: a protocol told by its first
   * bytes (tls, ssh, mysql, redis, kafka, amqp, dns: see recognize.ts), "gap" (none of its bytes
   * were captured: lost, or cut by the snap length) or "unknown".
   */
  undecoded: Record<string, number>;
  /** Connections that ended without a payload byte either way: nothing to decode, so not undecoded. */
  empty: number;
  /**
   * Connections given up unidentified, by the PROBE_LIMITS bound that ended probing: `attempts`
   * (maxAttemptsPerDir), `probes` (maxProbes), `heldBytes` (maxHeldBytes). They are in
   * `undecoded` too, by why.
   */
  gaveUp: { attempts: number; probes: number; heldBytes: number };
}

/** A server of undecoded connections: its address, why they were not decoded, how many. */
export interface UndecodedServer {
  ip: string;
  port: number;
  reason: string;
  connections: number;
}

/** Servers kept per reason; connections to servers beyond it are counted in `serversOmitted`. */
export const MAX_UNDECODED_SERVERS = 64;

/**
 * Routes each connection to the protocol whose probe recognises its bytes: detection is by
 * content, not port. Bytes seen before a match are held (bounded) and replayed, so nothing the
 * session needs is lost; a connection nobody recognises is dropped after PROBE_LIMITS.
 */
export class Dispatcher implements StreamHandler {
  private conns = new Map<string, ConnState>();
  readonly stats: DispatchStats = { byProtocol: {}, unknown: 0, transactions: 0, undecoded: {}, empty: 0, gaveUp: { attempts: 0, probes: 0, heldBytes: 0 } };
  /** Servers of undecoded connections, per reason (bounded by MAX_UNDECODED_SERVERS each). */
  private readonly servers = new Map<string, Map<string, UndecodedServer>>();
  /** Undecoded connections whose server was not kept. */
  serversOmitted = 0;

  constructor(
    private readonly analyzers: readonly ProtocolAnalyzer[],
    private readonly options: AnalyzerOptions,
    private readonly violations: Violations,
    private readonly onTransaction: (tx: Exchange, conn: ConnectionInfo) => void,
  ) {}

  open(conn: ConnectionInfo): void {
    this.conns.set(conn.id, {
      conn, flipped: false, rejected: false, held: [], heldBytes: 0, probeFrom: [-1, -1], attempts: [0, 0],
      probes: 0, lastDir: -1,
    });
  }

  data(conn: ConnectionInfo, dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    const st = this.conns.get(conn.id);
    if (!st || st.rejected) return;
    if (st.session) {
      this.guard(st, meta.offset, () => st.session!.data(st.flipped ? ((1 - dir) as Dir) : dir, bytes, meta));
      return;
    }
    st.held.push({ dir, bytes: Buffer.from(bytes), len: bytes.length, meta: { ...meta }, turn: st.lastDir !== dir });
    st.heldBytes += bytes.length;
    st.lastDir = dir;
    if (st.probeFrom[dir] < 0) st.probeFrom[dir] = st.held.length - 1;
    this.probe(st, dir);
  }

  gap(conn: ConnectionInfo, dir: Dir, length: number, meta: StreamMeta): void {
    const st = this.conns.get(conn.id);
    if (!st || st.rejected) return;
    if (st.session) {
      this.guard(st, meta.offset, () => st.session!.gap(st.flipped ? ((1 - dir) as Dir) : dir, length, meta));
      return;
    }
    st.held.push({ dir, bytes: undefined, len: length, meta: { ...meta }, turn: false });
    // A probe cannot span a gap: start again at the next segment.
    st.probeFrom[dir] = -1;
  }

  fin(conn: ConnectionInfo, dir: Dir, time: number): void {
    const st = this.conns.get(conn.id);
    if (st?.session) this.guard(st, undefined, () => st.session!.fin(st.flipped ? ((1 - dir) as Dir) : dir, time));
  }

  close(conn: ConnectionInfo, time: number, reason: CloseReason): void {
    const st = this.conns.get(conn.id);
    if (!st) return;
    this.conns.delete(conn.id);
    if (st.session) this.guard(st, undefined, () => st.session!.end(time, reason));
    else if (!st.rejected) this.undecoded(st);
  }

  /** Servers of undecoded connections, most connections first (a bounded sample: see serversOmitted). */
  undecodedServers(): UndecodedServer[] {
    return [...this.servers.values()].flatMap((m) => [...m.values()].map((s) => ({ ...s })))
      .sort((a, b) => b.connections - a.connections || a.reason.localeCompare(b.reason) || endpoint(a).localeCompare(endpoint(b)));
  }

  /**
   * A connection no analyzer took, given up on or ended: counted, with why when its first bytes
   * tell (recognize.ts), and its server kept in the sample. One that never carried a payload byte
   * is only `empty`: there was nothing to decode.
   */
  private undecoded(st: ConnState): void {
    this.stats.unknown++;
    const first: [Buffer[], Buffer[]] = [[], []];
    const size = [0, 0];
    const cut = [false, false];
    let speaker: Dir | undefined;
    let bytes = false, lost = false;
    for (const h of st.held) {
      speaker ??= h.dir;
      if (!h.bytes) {
        lost = true;
        cut[h.dir] = true;
        continue;
      }
      bytes = true;
      if (cut[h.dir] || size[h.dir]! >= RECOGNIZE_BYTES) continue;
      first[h.dir].push(h.bytes);
      size[h.dir]! += h.bytes.length;
    }
    st.held = [];
    if (!bytes && !lost) {
      this.stats.empty++;
      return;
    }
    const r = bytes ? recognizeTcp([Buffer.concat(first[0]), Buffer.concat(first[1])], speaker) : undefined;
    const reason = r?.kind ?? (bytes ? 'unknown' : 'gap');
    this.stats.undecoded[reason] = (this.stats.undecoded[reason] ?? 0) + 1;
    // The handshake says for certain which end is the server; otherwise the bytes may.
    const server = !st.conn.handshakeSeen && r?.serverDir === 0 ? st.conn.client : st.conn.server;
    let byServer = this.servers.get(reason);
    if (!byServer) this.servers.set(reason, (byServer = new Map()));
    const key = endpoint(server);
    const s = byServer.get(key);
    if (s) s.connections++;
    else if (byServer.size < MAX_UNDECODED_SERVERS) byServer.set(key, { ip: server.ip, port: server.port, reason, connections: 1 });
    else this.serversOmitted++;
  }

  /**
   * Wire input never throws out of a decoder. Sessions report malformed input as violations
   * themselves; should one throw anyway, the throw becomes a counted violation and that
   * connection is no longer decoded (Zeek's "violation disables the analyzer"), so one bad
   * connection cannot stop the capture.
   */
  private guard(st: ConnState, offset: number | undefined, call: () => void): void {
    try {
      call();
    } catch (err) {
      const conn = st.conn;
      this.violations.add('decoder.internal_error', `${st.protocol ?? 'session'} on ${endpoint(conn.client)} → ${endpoint(conn.server)} stopped: ${err instanceof Error ? err.message : String(err)}`, offset);
      st.session = undefined;
      st.rejected = true;
    }
  }

  /**
   * Tries every analyzer on this direction's bytes from the current probe start. When they all
   * say no, the next segment start of this direction held after it is tried, and so on: a probe
   * that asked for more and then failed must not glue the end of one message to the start of
   * the next and miss it. Only a failure at a segment that begins a turn (see HeldItem.turn)
   * costs an attempt: after a gap, or when the capture began mid-message, the rest of a message
   * starts nothing, and in tiny segments that is many segments. The next message begins a turn
   * (request/response protocols speak in turns), so probing resumes there; held bytes and
   * `maxProbes` keep it bounded.
   */
  private probe(st: ConnState, dir: Dir): void {
    for (;;) {
      const from = st.probeFrom[dir];
      const parts: Buffer[] = [];
      for (let i = from; i < st.held.length; i++) {
        const h = st.held[i]!;
        if (h.dir === dir && h.bytes) parts.push(h.bytes);
      }
      const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      let more = false;
      for (const a of this.analyzers) {
        const r = a.probe(dir, bytes);
        if (r === 'match' || r === 'reverse') {
          this.start(st, a, r === 'reverse', from);
          return;
        }
        if (r === 'more') more = true;
      }
      if (more) break;
      // Not a message start here; the next segment of this direction may be one.
      st.probes++;
      if (st.held[from]!.turn) st.attempts[dir]++;
      st.probeFrom[dir] = -1;
      if (this.giveUp(st, dir)) return;
      for (let i = from + 1; i < st.held.length; i++) {
        const h = st.held[i]!;
        if (h.dir === dir && h.bytes) {
          st.probeFrom[dir] = i;
          break;
        }
      }
      if (st.probeFrom[dir] < 0) return;
    }
    this.giveUp(st, dir);
  }

  /** Past PROBE_LIMITS the connection is given up: counted as undecoded. */
  private giveUp(st: ConnState, dir: Dir): boolean {
    const g = this.stats.gaveUp;
    if (st.attempts[0] + st.attempts[1] >= PROBE_LIMITS.maxAttemptsPerDir * 2 || st.attempts[dir] >= PROBE_LIMITS.maxAttemptsPerDir) g.attempts++;
    else if (st.probes >= PROBE_LIMITS.maxProbes) g.probes++;
    else if (st.heldBytes > PROBE_LIMITS.maxHeldBytes) g.heldBytes++;
    else return false;
    st.rejected = true;
    this.undecoded(st);
    return true;
  }

  /** `from`: index in `held` where the matching probe began; what came before was rejected. */
  private start(st: ConnState, analyzer: ProtocolAnalyzer, reverse: boolean, from = 0): void {
    const conn = st.conn;
    if (reverse) {
      st.flipped = true;
      const c = conn.client;
      conn.client = conn.server;
      conn.server = c;
    }
    st.protocol = analyzer.name;
    this.stats.byProtocol[analyzer.name] = (this.stats.byProtocol[analyzer.name] ?? 0) + 1;
    // Segments of this direction were rejected before the match: the session cannot know where
    // messages start in what came before, so it begins by resynchronising, as mid-stream.
    const rejected = st.held.some((h, i) => i < from && h.dir === st.held[from]?.dir && h.bytes !== undefined);
    st.session = analyzer.createSession({ ...this.context(st), resync: rejected });
    const held = st.held;
    st.held = [];
    st.heldBytes = 0;
    for (const h of held) {
      const d = st.flipped ? ((1 - h.dir) as Dir) : h.dir;
      if (!st.session) break;
      const session = st.session;
      if (h.bytes) this.guard(st, h.meta.offset, () => session.data(d, h.bytes!, h.meta));
      else this.guard(st, h.meta.offset, () => session.gap(d, h.len, h.meta));
    }
  }

  private context(st: ConnState): SessionContext {
    const conn = st.conn;
    return {
      conn,
      options: this.options,
      emit: (tx) => {
        this.stats.transactions++;
        this.onTransaction(tx, conn);
      },
      violation: (code, reason, offset) => {
        this.violations.add(code, `connection ${endpoint(conn.client)} → ${endpoint(conn.server)}: ${reason}`, offset);
      },
      handover: (protocol) => {
        const next = this.analyzers.find((a) => a.name === protocol);
        if (!next) return undefined;
        this.stats.byProtocol[next.name] = (this.stats.byProtocol[next.name] ?? 0) + 1;
        st.protocol = next.name;
        st.session = next.createSession(this.context(st));
        return st.session;
      },
      carried: (protocol) => CARRIED.get(protocol),
    };
  }
}
