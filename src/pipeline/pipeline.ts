import { DEFAULT_BODY_LIMIT } from '../common/defaults.js';
import { Violations } from '../common/violations.js';
import type { Packet } from '../capture/types.js';
import { DEFAULT_TIME_ORDER, TimeOrder, type TimeOrderOptions } from '../capture/timeorder.js';
import { Decoder, IPPROTO_TCP, IPPROTO_UDP } from '../decode/packet.js';
import { TcpReassembler } from '../reassembly/tcp.js';
import { DEFAULT_REASSEMBLY_LIMITS, type ReassemblyLimits } from '../reassembly/limits.js';
import { Dispatcher } from '../protocols/dispatch.js';
import { ANALYZERS } from '../protocols/registry.js';
import type { ProtocolAnalyzer } from '../protocols/types.js';
import { FlowBuilder } from '../flows/build.js';
import type { FlowRecord } from '../flows/record.js';
import type { Redactor } from '../flows/redact.js';
import type { ProtoSchemas } from '../protocols/grpc/protobuf.js';
import { decodeCoverage, UdpFlows, type DecodeCoverage } from './coverage.js';

export { DEFAULT_BODY_LIMIT };
export type { CoverageServer, DecodeCoverage } from './coverage.js';

export interface PipelineOptions {
  onRecord: (r: FlowRecord) => void;
  bodyLimit?: number;
  /** Undefined: no redaction. */
  redactor?: Redactor;
  /** Keep frame numbers in records (capture files). */
  frames?: boolean;
  reassembly?: Partial<ReassemblyLimits>;
  timeOrder?: Partial<TimeOrderOptions>;
  analyzers?: readonly ProtocolAnalyzer[];
  violations?: Violations;
  /** --proto schemas for gRPC messages. */
  protos?: ProtoSchemas;
  /** gRPC messages kept per direction of a call. */
  maxMessages?: number;
  /** PostgreSQL bind parameters become this redactor's keyed-hash tokens (--redact-params). */
  redactParams?: Redactor;
}

/**
 * Packets in, flow records out: time order → decode → TCP reassembly → protocol dispatch →
 * records. Any packet source (file reader, live capture) feeds `packet()`; `finish()` ends it.
 */
export class Pipeline {
  readonly violations: Violations;
  readonly decoder: Decoder;
  readonly reassembler: TcpReassembler;
  readonly dispatcher: Dispatcher;
  private readonly order: TimeOrder;
  private readonly windowSec: number;
  private readonly builder: FlowBuilder;
  /** UDP flows seen: counted (and named where their first datagram tells), not decoded. */
  readonly udp = new UdpFlows();
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
    this.dispatcher = new Dispatcher(opts.analyzers ?? ANALYZERS, { bodyLimit, maxMessages: opts.maxMessages }, this.violations, (tx, conn) => {
      this.flows++;
      onRecord(this.builder.build(tx, conn));
    });
    this.reassembler = new TcpReassembler(this.dispatcher, this.violations, { ...DEFAULT_REASSEMBLY_LIMITS, ...opts.reassembly });
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
    if (d.proto === IPPROTO_TCP) this.reassembler.packet(d);
    // No protocol over UDP is decoded yet: its flows are counted, so coverage can say so.
    else if (d.proto === IPPROTO_UDP) this.udp.packet(d);
  }

  /**
   * What was seen but not decoded: TCP connections no decoder took (by why), UDP flows, and a
   * sample of their servers. Connections still open count once they end (finish() ends them all).
   */
  coverage(): DecodeCoverage {
    return decodeCoverage(this.dispatcher, this.udp);
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
  }

  finish(): void {
    this.order.flush();
    this.reassembler.finish();
  }

  get timeOrder(): TimeOrder {
    return this.order;
  }
}
