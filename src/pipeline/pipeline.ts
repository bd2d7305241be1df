import { DEFAULT_BODY_LIMIT, Violations } from '../common/index.js';
import { DEFAULT_TIME_ORDER, TimeOrder, type Packet, type PlaintextMark, type TimeOrderOptions } from '../capture/index.js';
import { Decoder, formatIp, IPPROTO_TCP, IPPROTO_UDP, type Decoded } from '../decode/index.js';
import { DEFAULT_REASSEMBLY_LIMITS, TcpReassembler, type ReassemblyLimits } from '../reassembly/index.js';
import { ANALYZERS, DatagramDispatcher, Dispatcher, type Analyzer, type DatagramAnalyzer, type ProtocolAnalyzer, type ProtoSchemas } from '../protocols/index.js';
import type { CloseReason, ConnectionInfo, Dir, StreamHandler, StreamMeta } from '../stream/index.js';
import { FlowBuilder, type FlowRecord, type Redactor } from '../flows/index.js';
import { decodeCoverage, EncryptedConnections, UdpFlows, type DecodeCoverage } from './coverage.js';
import { LimitCounter, type LimitCounts } from './limits.js';
import { ServerNames } from './server-names.js';

export { DEFAULT_BODY_LIMIT };
export type { CoverageServer, DecodeCoverage } from './coverage.js';
export type { LimitCounts } from './limits.js';

export interface PipelineOptions {
  onRecord: (r: FlowRecord) => void;
  bodyLimit?: number;
  /** Undefined: no redaction. */
  redactor?: Redactor;
  /** Keep frame numbers in records (capture files). */
  frames?: boolean;
  reassembly?: Partial<ReassemblyLimits>;
  timeOrder?: Partial<TimeOrderOptions>;
  /** Protocols to decode (default: the registry's), TCP and UDP ones alike: each declares its transport. */
  analyzers?: readonly Analyzer[];
  violations?: Violations;
  /** --proto schemas for gRPC messages. */
  protos?: ProtoSchemas;
  /** gRPC messages kept per direction of a call. */
  maxMessages?: number;
  /** SQL bind parameters (PostgreSQL, MySQL executes) become this redactor's keyed-hash tokens (--redact-params). */
  redactParams?: Redactor;
}

/**
 * Packets in, flow records out: time order → decode → TCP reassembly → protocol dispatch →
 * records, and UDP datagrams → datagram dispatch → records. Any packet source (file reader, live
 * capture) feeds `packet()`; `finish()` ends it. A source of byte streams without packets (TLS
 * plaintext from eBPF uprobes) feeds `streams` instead, skipping decode and reassembly.
 */
export class Pipeline {
  readonly violations: Violations;
  readonly decoder: Decoder;
  readonly reassembler: TcpReassembler;
  readonly dispatcher: Dispatcher;
  readonly datagrams: DatagramDispatcher;
  private readonly order: TimeOrder;
  private readonly windowSec: number;
  private readonly builder: FlowBuilder;
  /** UDP flows seen: counted (and named where their first datagram tells), not decoded. */
  readonly udp = new UdpFlows();
  /** TLS connections whose handshake was decoded and whose content is encrypted (coverage). */
  readonly encrypted = new EncryptedConnections();
  /** ClientHellos' server names by connection, as soon as read (marks records decrypted from the same connection). */
  readonly serverNames = new ServerNames();
  private readonly limitCounter = new LimitCounter();
  private readonly reassemblyLimits: ReassemblyLimits;
  /** Decrypted TLS plaintext that came as packets (a tapwire pcapng export): reassembled apart, on first need. */
  private plaintext?: PlaintextConnections;
  packets = 0;
  /** Captured bytes of all packets. */
  bytes = 0;
  flows = 0;

  constructor(opts: PipelineOptions) {
    this.violations = opts.violations ?? new Violations();
    const bodyLimit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;
    this.decoder = new Decoder(this.violations);
    this.builder = new FlowBuilder({
      bodyLimit, redactor: opts.redactor, frames: opts.frames ?? true, protos: opts.protos, redactParams: opts.redactParams,
      violation: (code, reason) => this.violations.add(code, reason),
    });
    const onRecord = opts.onRecord;
    const analyzers = opts.analyzers ?? ANALYZERS;
    const options = { bodyLimit, maxMessages: opts.maxMessages, onServerName: (c: ConnectionInfo, name: string) => this.serverNames.record(c, name) };
    const emit = (tx: Parameters<FlowBuilder['build']>[0], conn: Parameters<FlowBuilder['build']>[1]) => {
      this.flows++;
      const r = this.builder.build(tx, conn);
      const origin = this.plaintext?.originOf(conn.id);
      if (origin) {
        // Marked as the live agent marks it (agent/tls.ts), the server name from the mark or else
        // from the ClientHello of the same connection's ciphertext in the same capture.
        r.tls = { ...origin };
        const sni = origin.sni ?? this.serverNames.of(r.src, r.dst);
        if (sni !== undefined) r.tls.sni = sni;
      }
      this.limitCounter.record(r);
      this.encrypted.record(r);
      onRecord(r);
    };
    this.dispatcher = new Dispatcher(analyzers.filter((a): a is ProtocolAnalyzer => a.transport === 'tcp'), options, this.violations, emit);
    this.datagrams = new DatagramDispatcher(analyzers.filter((a): a is DatagramAnalyzer => a.transport === 'udp'), options, this.violations, emit);
    this.reassemblyLimits = { ...DEFAULT_REASSEMBLY_LIMITS, ...opts.reassembly };
    this.reassembler = new TcpReassembler(this.dispatcher, this.violations, this.reassemblyLimits);
    const timeOrder = { ...DEFAULT_TIME_ORDER, ...opts.timeOrder };
    this.windowSec = timeOrder.windowSec;
    this.order = new TimeOrder((p) => this.ordered(p), timeOrder);
  }

  packet(p: Packet): void {
    this.packets++;
    this.bytes += p.data.length;
    this.order.push(p);
  }

  private ordered(p: Packet): void {
    const d = this.decoder.decode(p);
    if (!d) return;
    if (p.plaintext && d.proto === IPPROTO_TCP) {
      // Same 4-tuple as the wire's ciphertext: a reassembler of its own keeps the two apart.
      this.plaintext ??= new PlaintextConnections(this.dispatcher, this.violations, this.reassemblyLimits);
      this.plaintext.packet(d, p.plaintext);
    } else if (d.proto === IPPROTO_TCP) this.reassembler.packet(d);
    else if (d.proto === IPPROTO_UDP && !this.datagram(d)) this.udp.packet(d);
  }

  /** A UDP datagram to its protocol; false (counted as not decoded) when no analyzer takes its flow. */
  private datagram(d: Decoded): boolean {
    if (!this.datagrams.active) return false;
    return this.datagrams.datagram({
      family: d.family, src: { ip: formatIp(d.src), port: d.srcPort }, dst: { ip: formatIp(d.dst), port: d.dstPort },
      // The payload is a view of the packet's buffer: a session copies what it keeps.
      bytes: d.payload, meta: { time: d.time, frame: d.frame },
    });
  }

  /**
   * The entry for byte streams that come without packets: already-decrypted TLS plaintext with its
   * connection's 4-tuple. They go straight to protocol dispatch (content detection, sessions,
   * records), as TCP reassembly's output does. The source gives each connection its own id (not
   * one reassembly could also give) and calls open, data/gap/fin, close in order.
   */
  get streams(): StreamHandler {
    return this.dispatcher;
  }

  /**
   * Decrypted TLS plaintext read as packets (a tapwire pcapng export): its packets and connections,
   * reassembled apart from the wire's; undefined when there was none.
   */
  get plaintextStats(): { packets: number; connections: number } | undefined {
    return this.plaintext && { packets: this.plaintext.packets, connections: this.plaintext.reassembler.stats.connections };
  }

  /**
   * What was seen but not decoded: TCP connections no decoder took (by why), UDP flows, and a
   * sample of their servers. Connections still open count once they end (finish() ends them all).
   */
  coverage(): DecodeCoverage {
    return decodeCoverage(this.dispatcher, this.udp, this.encrypted);
  }

  /** Limits records hit (body previews cut, gRPC messages dropped, exchanges evicted), counted by name. */
  limits(): LimitCounts {
    const g = this.dispatcher.stats.gaveUp;
    return { ...this.limitCounter.counts, evictedDatagramFlows: this.datagrams.stats.evicted, probeGaveUp: g.attempts + g.probes + g.heldBytes };
  }

  /**
   * A live source's clock moved on to `nowSec` (epoch seconds, the clock its packets are stamped
   * with), with or without packets. Packets the time-order window held longer than its width are
   * released, and TCP reassembly applies its timeouts (idle close, gap timeout) up to the time
   * released packets have reached. Call it a few times a second: a completed exchange then becomes
   * a record within the window width plus the tick interval of its last byte. File sources never
   * call it, so their results do not depend on when they were read.
   */
  tick(nowSec: number): void {
    this.order.advance(nowSec);
    this.reassembler.tick(nowSec - this.windowSec);
    this.plaintext?.reassembler.tick(nowSec - this.windowSec);
    this.datagrams.tick(nowSec - this.windowSec);
  }

  finish(): void {
    this.order.flush();
    this.reassembler.finish();
    this.plaintext?.reassembler.finish();
    this.datagrams.finish();
  }

  get timeOrder(): TimeOrder {
    return this.order;
  }
}

/**
 * Decrypted TLS plaintext read back from packets (PlaintextPackets wrote them): reassembled by a
 * TcpReassembler of its own, because the wire's ciphertext of the same connection has the same
 * 4-tuple, then dispatched like any stream. Its connections' ids start with `tls-` (as the live
 * agent's plaintext connections do) and each keeps the mark of the packet that opened it, for
 * the records' `tls`.
 */
class PlaintextConnections implements StreamHandler {
  readonly reassembler: TcpReassembler;
  private readonly origins = new Map<string, PlaintextMark>();
  private mark?: PlaintextMark;
  packets = 0;

  constructor(private readonly next: StreamHandler, violations: Violations, limits: ReassemblyLimits) {
    this.reassembler = new TcpReassembler(this, violations, limits);
  }

  packet(d: Decoded, mark: PlaintextMark): void {
    // open() runs inside this call when the packet starts a connection.
    this.mark = mark;
    this.packets++;
    this.reassembler.packet(d);
    this.mark = undefined;
  }

  originOf(id: string): PlaintextMark | undefined {
    return this.origins.get(id);
  }

  open(conn: ConnectionInfo): void {
    // The reassembler made this object and keeps passing it: renamed once, the id holds throughout.
    conn.id = `tls-${conn.id}`;
    if (this.mark) this.origins.set(conn.id, this.mark);
    this.next.open(conn);
  }

  data(conn: ConnectionInfo, dir: Dir, bytes: Buffer, meta: StreamMeta): void {
    this.next.data(conn, dir, bytes, meta);
  }

  gap(conn: ConnectionInfo, dir: Dir, length: number, meta: StreamMeta): void {
    this.next.gap(conn, dir, length, meta);
  }

  fin(conn: ConnectionInfo, dir: Dir, time: number): void {
    this.next.fin(conn, dir, time);
  }

  close(conn: ConnectionInfo, time: number, reason: CloseReason): void {
    // Closing emits the connection's last records (synchronously): they still find their origin.
    this.next.close(conn, time, reason);
    this.origins.delete(conn.id);
  }
}
