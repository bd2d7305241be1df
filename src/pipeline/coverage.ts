import { formatIp, type Decoded } from '../decode/index.js';
import { recordModule, type FlowRecord } from '../flows/index.js';
import { recognizeUdp, type Dispatcher } from '../protocols/index.js';

/**
 * What a capture held that did not become flows: TCP connections no decoder took (TLS, MySQL,
 * Kafka … told by their first bytes where that is reliable, else "unknown"), and UDP flows (no
 * protocol over UDP is decoded yet). An empty result is then never mistaken for a clean one.
 */
export interface DecodeCoverage {
  /** TCP connections that carried payload no decoder took. */
  connections: number;
  /** Those connections by why: tls, ssh, mysql, redis, kafka, amqp, dns, gap (no byte captured), unknown. */
  byReason: Record<string, number>;
  /** TCP connections that ended without a payload byte: nothing to decode, so not counted above. */
  emptyConnections: number;
  /** UDP flows seen (distinct address and port pairs); none is decoded. */
  udpFlows: number;
  /** Those flows by what their first datagram is: dns, quic, unknown. */
  udpByReason: Record<string, number>;
  /**
   * TCP connections decoded only up to encryption: their handshake was decoded (a `tls` record
   * each: SNI, ALPN, version, cipher), the content after it is encrypted and was not read. Not
   * counted in `connections`; their servers are in `servers` with reason ENCRYPTED_REASON.
   * Absent when there were none.
   */
  encryptedConnections?: number;
  /** Those connections by protocol (tls). */
  encryptedByReason?: Record<string, number>;
  /** A bounded sample of the servers of all of these, most connections (or flows) first. */
  servers: CoverageServer[];
  /** Connections and flows whose server is not in the sample. */
  serversOmitted: number;
}

export interface CoverageServer {
  ip: string;
  port: number;
  transport: 'tcp' | 'udp';
  reason: string;
  /** Connections (TCP) or flows (UDP) to this server for this reason. */
  connections: number;
}

/**
 * The reason a server of encrypted connections is listed under: the handshake was read, what it
 * carried was not. A verdict whose spec names such a server is inconclusive (verify/verdict.ts).
 */
export const ENCRYPTED_REASON = 'tls: handshake decoded, content encrypted';

/**
 * Counts the connections whose record is a handshake (the record module's halves are
 * "handshake": TLS), and samples their servers, in bounded memory.
 */
export class EncryptedConnections {
  count = 0;
  readonly byReason: Record<string, number> = {};
  private readonly servers = new Map<string, CoverageServer>();
  serversOmitted = 0;

  record(r: FlowRecord): void {
    if (recordModule(r).halves !== 'handshake') return;
    this.count++;
    this.byReason[r.protocol] = (this.byReason[r.protocol] ?? 0) + 1;
    const key = `${r.dst.ip}\0${r.dst.port}`;
    const s = this.servers.get(key);
    if (s) s.connections++;
    else if (this.servers.size < MAX_ENCRYPTED_SERVERS) this.servers.set(key, { ip: r.dst.ip, port: r.dst.port, transport: 'tcp', reason: ENCRYPTED_REASON, connections: 1 });
    else this.serversOmitted++;
  }

  serverList(): CoverageServer[] {
    return [...this.servers.values()].map((s) => ({ ...s }));
  }
}

/** Servers of encrypted connections kept in the sample. */
const MAX_ENCRYPTED_SERVERS = 64;

/** UDP flows remembered at once; past it the oldest is forgotten (seen again, it counts again). */
export const MAX_UDP_FLOWS = 1 << 16;
/** UDP servers kept per reason in the sample. */
const MAX_UDP_SERVERS = 64;
/** tapwire's own drain markers (live/barrier.ts): UDP to the discard port, not traffic under test. */
const MARKER = Buffer.from('tapwire-drain ');

/** Counts UDP flows, in bounded memory: distinct address and port pairs, either direction. */
export class UdpFlows {
  private readonly seen = new Map<string, true>();
  private readonly servers = new Map<string, Map<string, CoverageServer>>();
  count = 0;
  readonly byReason: Record<string, number> = {};
  serversOmitted = 0;

  packet(d: Decoded): void {
    if (d.dstPort === 9 && d.payload.subarray(0, MARKER.length).equals(MARKER)) return;
    const a = `${d.src.toString('latin1')}\0${d.srcPort}`, b = `${d.dst.toString('latin1')}\0${d.dstPort}`;
    const key = a < b ? `${a}\0${b}` : `${b}\0${a}`;
    if (this.seen.has(key)) return;
    this.seen.set(key, true);
    if (this.seen.size > MAX_UDP_FLOWS) this.seen.delete(this.seen.keys().next().value!);
    this.count++;
    const r = recognizeUdp(d.payload);
    const reason = r?.kind ?? 'unknown';
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
    // The content says who serves (a DNS query goes to the server); else a well-known port
    // answering an ephemeral one is the server; else the first datagram went to it.
    const senderServes = r?.serverDir !== undefined ? r.serverDir === 0 : d.srcPort < 1024 && d.dstPort >= 1024;
    const ip = senderServes ? d.src : d.dst, port = senderServes ? d.srcPort : d.dstPort;
    let byServer = this.servers.get(reason);
    if (!byServer) this.servers.set(reason, (byServer = new Map()));
    const sk = `${ip.toString('latin1')}\0${port}`;
    const s = byServer.get(sk);
    if (s) s.connections++;
    else if (byServer.size < MAX_UDP_SERVERS) byServer.set(sk, { ip: formatIp(ip), port, transport: 'udp', reason, connections: 1 });
    else this.serversOmitted++;
  }

  serverList(): CoverageServer[] {
    return [...this.servers.values()].flatMap((m) => [...m.values()].map((s) => ({ ...s })));
  }
}

/** The coverage of what a dispatcher, a UDP counter and (when given) an encrypted-connection counter saw. */
export function decodeCoverage(dispatcher: Dispatcher, udp: UdpFlows, encrypted?: EncryptedConnections): DecodeCoverage {
  const st = dispatcher.stats;
  const servers: CoverageServer[] = [
    ...dispatcher.undecodedServers().map((s): CoverageServer => ({ ip: s.ip, port: s.port, transport: 'tcp', reason: s.reason, connections: s.connections })),
    ...udp.serverList(),
    ...(encrypted?.serverList() ?? []),
  ]
    .sort((a, b) => b.connections - a.connections || a.transport.localeCompare(b.transport) || a.reason.localeCompare(b.reason));
  return {
    connections: Object.values(st.undecoded).reduce((a, b) => a + b, 0),
    byReason: { ...st.undecoded },
    emptyConnections: st.empty,
    udpFlows: udp.count,
    udpByReason: { ...udp.byReason },
    // Present only when there were some, so coverage without TLS reads as before.
    ...(encrypted?.count ? { encryptedConnections: encrypted.count, encryptedByReason: { ...encrypted.byReason } } : {}),
    servers,
    serversOmitted: dispatcher.serversOmitted + udp.serversOmitted + (encrypted?.serversOmitted ?? 0),
  };
}
