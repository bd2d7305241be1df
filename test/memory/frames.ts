/**
 * Fast synthetic TCP frames for the memory tests: one Ethernet + IPv4 + TCP template, patched per
 * connection (addresses, ports, sequence numbers), so 100 000 connections build in milliseconds.
 * Checksums are left zero: tapwire does not verify them (a capture's are often offloaded).
 */
import type { Packet } from '../../src/capture/types.js';

export const SYN = 0x02, PSH_ACK = 0x18, ACK = 0x10;

export interface FrameSpec {
  /** Connection number: gives each its own client address and port. */
  conn: number;
  seq: number;
  ack?: number;
  flags: number;
  payload?: Buffer;
  /** From the server (port 80) to the client, instead of the other way. */
  fromServer?: boolean;
  serverPort?: number;
}

/** Client 10.<conn's bits>.<…>: 10.64.0.0/10 holds 2^22 of them, each with its own port. */
function clientIp(conn: number): number {
  return ((10 << 24) | (64 << 16) | (conn >> 6)) >>> 0;
}

export function frame(s: FrameSpec, time: number, no: number): Packet {
  const payload = s.payload ?? Buffer.alloc(0);
  const b = Buffer.alloc(54 + payload.length);
  b.writeUInt16BE(0x0800, 12);
  b[14] = 0x45;
  b.writeUInt16BE(40 + payload.length, 16);
  b.writeUInt16BE(no & 0xffff, 18);
  b[22] = 64;
  b[23] = 6;
  // 10.255.255.254, above every client: each connection is then its own entry of reassembly's outer
  // map (its lower endpoint is the client), the costlier layout.
  const client = clientIp(s.conn), server = 0x0afffffe;
  const cport = 1024 + (s.conn & 63), sport = s.serverPort ?? 80;
  b.writeUInt32BE(s.fromServer ? server : client, 26);
  b.writeUInt32BE(s.fromServer ? client : server, 30);
  b.writeUInt16BE(s.fromServer ? sport : cport, 34);
  b.writeUInt16BE(s.fromServer ? cport : sport, 36);
  b.writeUInt32BE(s.seq >>> 0, 38);
  b.writeUInt32BE((s.ack ?? 0) >>> 0, 42);
  b[46] = 0x50;
  b[47] = s.flags;
  b.writeUInt16BE(65535, 48);
  payload.copy(b, 54);
  return { frame: no, time, linkType: 1, iface: 0, data: b, wireLen: b.length };
}
