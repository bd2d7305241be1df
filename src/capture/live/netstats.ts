import { readdirSync, readFileSync } from 'node:fs';

/**
 * Interface counters from /sys/class/net/<if>/statistics: what the kernel saw, to set beside what
 * the capture delivered. libpcap's own drop counter (pcap_stats) is out of reach through `cap`, so
 * these are the nearest independent count.
 */
export interface NetCounters {
  rxPackets: number;
  txPackets: number;
  rxDropped: number;
}

const SYS_NET = '/sys/class/net';

function readCounter(iface: string, name: string): number | undefined {
  try {
    const n = Number(readFileSync(`${SYS_NET}/${iface}/statistics/${name}`, 'latin1'));
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** One interface's counters now; undefined when it is gone or has none. */
export function readNetCounters(iface: string): NetCounters | undefined {
  const rxPackets = readCounter(iface, 'rx_packets');
  const txPackets = readCounter(iface, 'tx_packets');
  const rxDropped = readCounter(iface, 'rx_dropped');
  if (rxPackets === undefined || txPackets === undefined || rxDropped === undefined) return undefined;
  return { rxPackets, txPackets, rxDropped };
}

/** Whether the kernel knows an interface of this name (in this network namespace). */
export function interfaceExists(iface: string): boolean {
  return listInterfaces().includes(iface);
}

export function listInterfaces(): string[] {
  try {
    return readdirSync(SYS_NET);
  } catch {
    return [];
  }
}

/** Counters of every interface of the namespace, by name (the `any` pseudo-device). */
export function readAllNetCounters(): Map<string, NetCounters> {
  const all = new Map<string, NetCounters>();
  for (const name of listInterfaces()) {
    const c = readNetCounters(name);
    if (c) all.set(name, c);
  }
  return all;
}

/**
 * Counter deltas since a baseline. Over several interfaces (`any`) they are summed; an interface
 * that appeared after the baseline counts from zero, one that disappeared drops out of the sum.
 */
export function netDelta(before: Map<string, NetCounters>, after: Map<string, NetCounters>): NetCounters {
  const d: NetCounters = { rxPackets: 0, txPackets: 0, rxDropped: 0 };
  for (const [name, a] of after) {
    const b = before.get(name);
    d.rxPackets += a.rxPackets - (b?.rxPackets ?? 0);
    d.txPackets += a.txPackets - (b?.txPackets ?? 0);
    d.rxDropped += a.rxDropped - (b?.rxDropped ?? 0);
  }
  return d;
}
