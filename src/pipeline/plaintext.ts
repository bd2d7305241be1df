import { connectionKey, shortHash } from '../common/index.js';
import type { TlsOrigin } from '../flows/index.js';
import type { CloseReason, ConnectionInfo, Dir, StreamHandler } from '../stream/index.js';

/**
 * One piece of a connection's plaintext as a TLS library handed it to its caller (eBPF uprobes on
 * SSL_write/SSL_read: src/capture/tls/). The shape the pipeline needs, whatever probed it.
 */
export interface PlaintextChunk {
  pid: number;
  comm?: string;
  /** The TLS session (the SSL* in `pid`). */
  session: string;
  /** egress: the process wrote it; ingress: it read it. */
  direction: 'egress' | 'ingress';
  /** Epoch seconds. */
  time: number;
  data: Buffer;
  /**
   * Bytes of the call after this piece that no piece carries (the probe's copy limit was reached):
   * non-zero only on the last copied piece of such a call. Delivered as a gap.
   */
  uncopied: number;
  /** The TCP connection from the process's side; chunks without one cannot be placed. */
  connection?: { local: { ip: string; port: number }; remote: { ip: string; port: number } };
  library: string;
  /**
   * The process's end of the connection when the source knows it (it listens on the local port:
   * server). Without it, the end that writes first is taken as the client.
   */
  side?: 'client' | 'server';
}

/** What a record decoded from plaintext says of where it came from (the record's `tls`). */
export type PlaintextOrigin = TlsOrigin & { pid: number };

export interface PlaintextCounters {
  chunks: number;
  /** Chunks without a connection (fd unknown, socket closed): not placed. */
  unplaced: number;
  /** Chunks of a connection another process's probes already give (both ends on this host). */
  otherSide: number;
  /** Chunks of connections the capture filter leaves out. */
  filtered: number;
  /** Bytes the probes did not copy (a call larger than the copy limit): delivered as gaps. */
  gapBytes: number;
  connections: number;
  /** Sessions closed because the library ended them (SSL_free), not by idling out. */
  ended: number;
}

interface Session {
  conn: ConnectionInfo;
  /** This process is the client (by its side when known, else because it wrote first). */
  client: boolean;
  next: [number, number];
  last: number;
  origin: PlaintextOrigin;
  key: string;
}

/** A session unheard of this long, and never ended by its library, is closed: its exchanges are flushed. */
const IDLE_SEC = 60;
/**
 * How long an ended connection's other end is still recognised as such. A client port is not
 * reused within it (TIME_WAIT holds it for 60 s, RFC 9293 §3.4.2), so no new connection is lost.
 */
const ENDED_GRACE_SEC = 5;

/**
 * Plaintext chunks as byte streams for the protocol analyzers (Pipeline.streams): one stream per
 * TLS session of a process, its bytes in call order, a call's uncopied tail a gap.
 *
 * Roles: the probes see one process's reads and writes, not who connected. A chunk's `side` (the
 * process listens on its local port: server) decides; without it the side that writes first is
 * taken as the client, which holds for the protocols whose client speaks first (HTTP/1, HTTP/2's
 * preface, gRPC, PostgreSQL, Redis) and is said in docs/ebpf.md. When both ends of a
 * connection run on this host, both are probed and give the same bytes: the first process seen on
 * a connection gives it, the other's chunks are counted (`otherSide`) and dropped.
 */
export class PlaintextStreams {
  private readonly sessions = new Map<string, Session>();
  /** Connections (normalized 4-tuple) given by a session now, so the other end's copy is dropped. */
  private readonly byTuple = new Map<string, string>();
  /**
   * Connections whose giving session ended lately, with when: the other end's last chunks may
   * still be on their way (its return probe runs after the write that let this end read, answer
   * and close), and must not open a second copy of the connection. Kept ENDED_GRACE_SEC.
   */
  private readonly ended = new Map<string, { key: string; time: number }>();
  private readonly origins = new Map<string, PlaintextOrigin>();
  readonly counters: PlaintextCounters = { chunks: 0, unplaced: 0, otherSide: 0, gapBytes: 0, connections: 0, ended: 0, filtered: 0 };

  /** keep's answer per connection (normalized 4-tuple), so libpcap is asked once a connection. */
  private readonly kept = new Map<string, boolean>();

  /**
   * `keep` says whether a connection is wanted at all (the agent's capture filter, which packets
   * get from libpcap and plaintext from src/capture/tls/filter.ts); unwanted chunks are counted
   * (`filtered`) and dropped.
   */
  constructor(private readonly out: StreamHandler, private readonly idleSec = IDLE_SEC, private readonly keep?: (ends: NonNullable<PlaintextChunk['connection']>) => boolean) {}

  chunk(c: PlaintextChunk): void {
    this.counters.chunks++;
    if (!c.connection) {
      this.counters.unplaced++;
      return;
    }
    const key = `${c.pid}/${c.session}`;
    const tuple = tupleKey(c.connection);
    if (this.keep) {
      let ok = this.kept.get(tuple);
      if (ok === undefined) {
        if (this.kept.size >= 10_000) this.kept.clear();
        ok = this.keep(c.connection);
        this.kept.set(tuple, ok);
      }
      if (!ok) {
        this.counters.filtered++;
        return;
      }
    }
    let s = this.sessions.get(key);
    if (s && s.key !== tuple) {
      // The SSL* was freed and reused for another connection.
      this.end(key, s, c.time, 'reused');
      s = undefined;
    }
    if (!s) {
      const holder = this.byTuple.get(tuple);
      const gone = holder === undefined ? this.ended.get(tuple) : undefined;
      if ((holder !== undefined && holder !== key) || (gone && gone.key !== key && c.time - gone.time < ENDED_GRACE_SEC)) {
        this.counters.otherSide++;
        return;
      }
      s = this.open(key, tuple, c);
    }
    s.last = c.time;
    const dir: Dir = (c.direction === 'egress') === s.client ? 0 : 1;
    // One process's calls are in order: whatever it moved the other way before this call was done
    // then, which is what an ACK says on the wire (pairing after a gap relies on it).
    const meta = { time: c.time, frame: 0, offset: s.next[dir], peerAck: s.next[dir === 0 ? 1 : 0] };
    if (c.data.length > 0) this.out.data(s.conn, dir, c.data, meta);
    s.next[dir] += c.data.length;
    // The last piece of a call whose bytes were not all copied: the rest is lost, and said so.
    if (c.uncopied > 0) {
      this.out.gap(s.conn, dir, c.uncopied, { ...meta, offset: s.next[dir] });
      s.next[dir] += c.uncopied;
      this.counters.gapBytes += c.uncopied;
    }
  }

  /** Where the records of connection `id` came from; undefined for a connection not from plaintext. */
  originOf(connectionId: string): PlaintextOrigin | undefined {
    return this.origins.get(connectionId);
  }

  /**
   * The library ended TLS session `session` of `pid` (SSL_free): its stream closes now, as a FIN
   * would close it, so its last exchange comes out at once (an HTTP/1.0 body delimited by the
   * close completes). False when no stream was open for it (no data placed, or the other end's).
   */
  endSession(pid: number, session: string, time: number): boolean {
    const key = `${pid}/${session}`;
    const s = this.sessions.get(key);
    if (!s) return false;
    this.counters.ended++;
    this.end(key, s, Math.max(time, s.last), 'fin');
    return true;
  }

  /**
   * Process `pid` is gone (sched_process_exit: a SIGKILL, or Go, which has no SSL_free): every
   * session of it closes now, as endSession closes one. Returns how many closed.
   */
  endProcess(pid: number, time: number): number {
    const prefix = `${pid}/`;
    let n = 0;
    for (const [key, s] of this.sessions) {
      if (!key.startsWith(prefix)) continue;
      this.counters.ended++;
      this.end(key, s, Math.max(time, s.last), 'fin');
      n++;
    }
    return n;
  }

  /** Closes sessions unheard of for idleSec before `now`. */
  tick(now: number): void {
    for (const [key, s] of this.sessions) if (now - s.last > this.idleSec) this.end(key, s, now, 'idle');
    for (const [tuple, e] of this.ended) if (now - e.time >= ENDED_GRACE_SEC) this.ended.delete(tuple);
  }

  /** Closes every session (the source stopped). */
  finish(now: number): void {
    for (const [key, s] of this.sessions) this.end(key, s, now, 'eof');
  }

  private open(key: string, tuple: string, c: PlaintextChunk): Session {
    const tcp = c.connection!;
    // Who listens decides; who writes first only when that is unknown (Go's HTTP/2 server sends
    // its SETTINGS before the client's preface arrives, RFC 9113 §3.4).
    const client = c.side ? c.side === 'client' : c.direction === 'egress';
    const [cl, sv] = client ? [tcp.local, tcp.remote] : [tcp.remote, tcp.local];
    const conn: ConnectionInfo = {
      id: `tls-${shortHash(`${key} ${tuple} ${c.time}`)}`,
      client: { ...cl }, server: { ...sv }, family: cl.ip.includes(':') ? 6 : 4,
      startTime: c.time, firstFrame: 0, handshakeSeen: false, midStream: false,
    };
    const origin: PlaintextOrigin = { library: c.library, via: 'uprobe', pid: c.pid, ...(c.comm ? { comm: c.comm } : {}) };
    const s: Session = { conn, client, next: [0, 0], last: c.time, origin, key: tuple };
    this.sessions.set(key, s);
    this.byTuple.set(tuple, key);
    this.origins.set(conn.id, origin);
    this.counters.connections++;
    this.out.open(conn);
    return s;
  }

  private end(key: string, s: Session, time: number, reason: CloseReason): void {
    this.sessions.delete(key);
    if (this.byTuple.get(s.key) === key) {
      this.byTuple.delete(s.key);
      this.ended.set(s.key, { key, time });
    }
    // Closing emits the connection's last records (synchronously): they still find their origin.
    this.out.close(s.conn, time, reason);
    this.origins.delete(s.conn.id);
  }
}

/** One key for both ends' view of a TCP connection. */
function tupleKey(t: { local: { ip: string; port: number }; remote: { ip: string; port: number } }): string {
  return connectionKey(t.local, t.remote);
}
