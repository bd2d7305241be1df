import { getHeapStatistics } from 'node:v8';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CaptureCounters } from '../capture/index.js';
import type { Pipeline, PlaintextPacketCounters } from '../pipeline/index.js';
import type { FlowStore } from '../store/index.js';
import type { AgentKubernetes } from './kubernetes.js';
import type { AgentProcesses } from './processes.js';
import type { AgentTls } from './tls.js';

/** What the metrics read, each time they are scraped. */
export interface MetricSources {
  /** Undefined until the capture has started. */
  pipeline: () => Pipeline | undefined;
  capture: () => CaptureCounters | undefined;
  store: FlowStore;
  /** With --kubernetes: the informers, the records waiting for their pods. */
  kubernetes?: () => AgentKubernetes | undefined;
  /** With --tls: the uprobes, whose programs' kernel-side cost is reported. */
  tls?: () => AgentTls | undefined;
  /** Process attribution (src.process, dst.process), when on. */
  processes?: () => AgentProcesses | undefined;
  /** What of the decrypted plaintext was kept in the store as synthesized packets (for snapshots and pcap export). */
  plaintextKept?: () => PlaintextPacketCounters | undefined;
}

/**
 * The agent's Prometheus metrics (prom-client): packets, bytes, drops where known, violations,
 * open connections, flows, evictions, store size, memory. Values are read from their sources at
 * scrape time (collect callbacks), so the hot path pays nothing for them.
 */
export function agentMetrics(src: MetricSources): { registry: Registry; flowsSeen: Counter } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tapwire_' });
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void) =>
    new Gauge({ name, help, labelNames, registers: [registry], collect() { collect(this); } });
  gauge('tapwire_capture_packets', 'Packets captured per interface (before de-duplication)', ['interface'], (g) => {
    for (const i of src.capture()?.interfaces ?? []) g.set({ interface: i.name }, i.seen);
  });
  gauge('tapwire_capture_bytes', 'Bytes captured per interface', ['interface'], (g) => {
    for (const i of src.capture()?.interfaces ?? []) g.set({ interface: i.name }, i.bytes);
  });
  gauge('tapwire_interface_packets', 'The kernel\'s own packet counters of each interface since the agent started (rx, tx), to compare with packets captured', ['interface', 'direction'], (g) => {
    for (const i of src.capture()?.interfaces ?? []) {
      if (i.rxPackets !== undefined) g.set({ interface: i.name, direction: 'rx' }, i.rxPackets);
      if (i.txPackets !== undefined) g.set({ interface: i.name, direction: 'tx' }, i.txPackets);
    }
  });
  gauge('tapwire_interface_dropped', 'Packets the interface itself dropped (rx_dropped) since the agent started; libpcap drops are not known through cap', ['interface'], (g) => {
    for (const i of src.capture()?.interfaces ?? []) if (i.rxDropped !== undefined) g.set({ interface: i.name }, i.rxDropped);
  });
  gauge('tapwire_capture_duplicates', 'Packets seen on more than one interface and delivered once', [], (g) => g.set(src.capture()?.duplicates ?? 0));
  gauge('tapwire_capture_source', 'The packet source capturing (1): pcap (libpcap), ebpf (TC), or both side by side', ['source'], (g) => {
    const c = src.capture();
    if (c) g.set({ source: c.source }, 1);
  });
  // The eBPF source counts in the kernel what libpcap through cap cannot: every frame, and every drop.
  gauge('tapwire_capture_lost_packets_total', 'Packets the capture source dropped before the agent read them: the eBPF ring buffer was full (ring-full) or a frame could not be copied (copy-failed); libpcap through cap reports none', ['source', 'reason'], (g) => {
    const e = src.capture()?.ebpf;
    if (!e) return;
    g.set({ source: 'ebpf', reason: 'ring-full' }, e.lost);
    g.set({ source: 'ebpf', reason: 'copy-failed' }, e.readFail);
  });
  gauge('tapwire_capture_ebpf_frames_total', 'Frames the TC programs ran on (seen), put in the ring (sent), and left out by the in-kernel port/prefix filter (filtered-kernel) or by the exact --filter in the reader (filtered-reader)', ['outcome'], (g) => {
    const e = src.capture()?.ebpf;
    if (!e) return;
    g.set({ outcome: 'seen' }, e.seen);
    g.set({ outcome: 'sent' }, e.sent);
    g.set({ outcome: 'filtered-kernel' }, e.filtered);
    g.set({ outcome: 'filtered-reader' }, e.userFiltered);
  });
  gauge('tapwire_capture_compared_packets_total', 'With --source both: packets each source delivered first (first), and copies of one the other had delivered (second); a source\'s first + second below the other\'s is what it missed', ['source', 'order'], (g) => {
    const c = src.capture()?.compared;
    if (!c) return;
    for (const s of ['pcap', 'ebpf'] as const) {
      g.set({ source: s, order: 'first' }, c[s].first);
      g.set({ source: s, order: 'second' }, c[s].second);
    }
  });
  gauge('tapwire_pipeline_packets', 'Packets into the decode pipeline', [], (g) => g.set(src.pipeline()?.packets ?? 0));
  gauge('tapwire_pipeline_bytes', 'Bytes into the decode pipeline', [], (g) => g.set(src.pipeline()?.bytes ?? 0));
  gauge('tapwire_violations', 'Wire-input violations by code', ['code'], (g) => {
    for (const [code, n] of src.pipeline()?.violations.counts ?? []) g.set({ code }, n);
  });
  gauge('tapwire_open_connections', 'TCP connections being reassembled', [], (g) => g.set(src.pipeline()?.reassembler.stats.openConnections ?? 0));
  gauge('tapwire_reassembly_memory_bytes', 'Estimated bytes of TCP connection state (bounded by maxConnectionMemory)', [], (g) => g.set(src.pipeline()?.reassembler.stats.memoryBytes ?? 0));
  gauge('tapwire_reassembly_evictions', 'Connections evicted, by the limit that evicted them (connections: the count, memory: the bytes)', ['limit'], (g) => {
    const e = src.pipeline()?.reassembler.stats.evictions;
    g.set({ limit: 'connections' }, e?.connections ?? 0);
    g.set({ limit: 'memory' }, e?.memory ?? 0);
  });
  gauge('tapwire_pipeline_limits', 'Limits records hit, by name (body previews cut, gRPC messages dropped, exchanges evicted, connections given up unidentified …)', ['name'], (g) => {
    for (const [name, n] of Object.entries(src.pipeline()?.limits() ?? {})) g.set({ name }, n);
  });
  gauge('tapwire_nodejs_heap_size_limit_bytes', 'The JS heap limit V8 enforces (tapwire agent --max-heap)', [], (g) => g.set(getHeapStatistics().heap_size_limit));
  gauge('tapwire_store_flows', 'Flows held by the store (memory and disk)', [], (g) => g.set(src.store.stats().flows));
  gauge('tapwire_store_bytes', 'Bytes of flow and packet segments on disk', [], (g) => g.set(src.store.stats().bytesOnDisk));
  gauge('tapwire_store_evictions', 'Segments removed by retention', [], (g) => g.set(src.store.stats().evictions));
  gauge('tapwire_store_pinned_bytes', 'Bytes pinned by snapshots', [], (g) => g.set(src.store.stats().pinnedBytes));
  gauge('tapwire_store_memory_flows', 'Latest flows held in memory, and their encoded bytes (both bounded)', ['unit'], (g) => {
    const s = src.store.stats();
    g.set({ unit: 'flows' }, s.flowsInMemory);
    g.set({ unit: 'bytes' }, s.flowsInMemoryBytes);
  });
  gauge('tapwire_store_corrupt_frames', 'Frames of sealed segments found damaged when read (checksum, length, file cut short, undecodable record), each also a named loss', [], (g) => g.set(src.store.stats().corruptFrames));
  gauge('tapwire_kubernetes_objects', 'Objects the informers hold (this node\'s pods; the cluster\'s services, endpointslices and nodes) and addresses with an identity history', ['kind'], (g) => {
    const s = src.kubernetes?.()?.stats().identity;
    if (!s) return;
    for (const kind of ['pods', 'services', 'slices', 'nodes', 'ips', 'versions'] as const) g.set({ kind }, s[kind]);
  });
  gauge('tapwire_kubernetes_api_requests', 'Requests to the API server by kind (lists, watches opened, watches restarted, relists after 410 Gone, owner gets)', ['kind'], (g) => {
    const s = src.kubernetes?.()?.stats().identity;
    if (!s) return;
    g.set({ kind: 'lists' }, s.lists);
    g.set({ kind: 'watches' }, s.watches);
    g.set({ kind: 'restarts' }, s.restarts);
    g.set({ kind: 'relists' }, s.relists);
    g.set({ kind: 'owner_gets' }, s.ownerGets);
  });
  gauge('tapwire_kubernetes_late_records', 'Records that waited for a peer\'s pod: held now, and released (known, timeout, full, flush)', ['state'], (g) => {
    const s = src.kubernetes?.()?.stats().late;
    if (!s) return;
    g.set({ state: 'held' }, s.held);
    g.set({ state: 'known' }, s.releasedKnown);
    g.set({ state: 'timeout' }, s.releasedTimeout);
    g.set({ state: 'full' }, s.releasedFull);
    g.set({ state: 'flush' }, s.releasedFlush);
  });
  // The TLS probes' kernel-side cost: run in the probed processes' context, so it is not in
  // tapwire_process_cpu_seconds_total (nor in this cgroup); counted only while bpf stats are on.
  let cost: ReturnType<AgentTls['kernelCost']> | undefined;
  let costAt = 0;
  const kernelCost = () => {
    // one read of the programs' info per scrape, shared by the three gauges
    if (Date.now() - costAt > 100) {
      cost = src.tls?.()?.kernelCost();
      costAt = Date.now();
    }
    return cost;
  };
  gauge('tapwire_ebpf_stats_enabled', 'Whether kernel.bpf_stats_enabled is on (1), so that the TLS programs\' run time and runs are counted; 0: their figures do not move (not free), or --tls is off', [], (g) => g.set(kernelCost()?.statsEnabled ? 1 : 0));
  gauge('tapwire_ebpf_run_seconds_total', 'Kernel time spent running each TLS eBPF program (run_time_ns), in the probed processes\' context: not in tapwire_process_cpu_seconds_total nor this cgroup; counted only while tapwire_ebpf_stats_enabled is 1', ['program'], (g) => {
    for (const p of kernelCost()?.programs ?? []) g.set({ program: p.name }, p.runTimeNs / 1e9);
  });
  gauge('tapwire_ebpf_runs_total', 'Runs of each TLS eBPF program (run_cnt); counted only while tapwire_ebpf_stats_enabled is 1', ['program'], (g) => {
    for (const p of kernelCost()?.programs ?? []) g.set({ program: p.name }, p.runCnt);
  });
  // What the TLS probes delivered and lost: a decrypted flow missing under load shows here first.
  gauge('tapwire_tls_events_total', 'Ring-buffer events the TLS probes delivered to the agent (plaintext chunks, session ends, execs)', [], (g) => {
    const c = src.tls?.()?.counters();
    if (c) g.set(c.probes.events);
  });
  gauge('tapwire_tls_lost_events_total', 'TLS probe events the ring buffer had no room for: their plaintext is a gap in its stream', [], (g) => {
    const c = src.tls?.()?.counters();
    if (c) g.set(c.probes.lost);
  });
  gauge('tapwire_tls_chunks_total', 'Plaintext chunks by what became of them: placed on a connection, unplaced (no socket known), other-side (both ends probed, given once), filtered (--filter)', ['state'], (g) => {
    const c = src.tls?.()?.counters();
    if (!c) return;
    const s = c.streams;
    g.set({ state: 'placed' }, s.chunks - s.unplaced - s.otherSide - s.filtered);
    g.set({ state: 'unplaced' }, s.unplaced);
    g.set({ state: 'other-side' }, s.otherSide);
    g.set({ state: 'filtered' }, s.filtered);
  });
  gauge('tapwire_tls_connections_total', 'TLS connections decrypted into the pipeline (one per session, both ends on this host counted once)', [], (g) => {
    const c = src.tls?.()?.counters();
    if (c) g.set(c.streams.connections);
  });
  // One owner watch serves attribution and TLS coverage: read it from whichever has it.
  const owners = () => src.processes?.()?.counters().owners ?? src.tls?.()?.counters().owners;
  gauge('tapwire_tls_owner_events_total', 'Connection-owner events (connect, accept, exec) from the sock and syscall tracepoints, which name the processes at the ends of TLS connections coverage could not decrypt', [], (g) => {
    const c = owners();
    if (c) g.set(c.events);
  });
  gauge('tapwire_tls_owner_lost_events_total', 'Connection-owner events the ring buffer had no room for: those connections\' processes are unknown to coverage', [], (g) => {
    const c = owners();
    if (c) g.set(c.lost);
  });
  gauge('tapwire_tls_owner_connections', 'Connections whose end processes are remembered now (bounded; they outlive the connection so its record can name them)', [], (g) => {
    const c = owners();
    if (c) g.set(c.connections);
  });
  gauge('tapwire_process_attribution_ends_total', 'Flow ends named with their process (src.process, dst.process): two per record when both ends are on this host', [], (g) => {
    const c = src.processes?.()?.counters();
    if (c) g.set(c.ends);
  });
  gauge('tapwire_process_attribution_records_total', 'Records by what attribution did: given, waited for an end\'s owner event (up to 100 ms), released with an end still unknown (another host, or opened before the agent)', ['state'], (g) => {
    const c = src.processes?.()?.counters();
    if (!c) return;
    g.set({ state: 'given' }, c.records);
    g.set({ state: 'waited' }, c.waited);
    g.set({ state: 'unknown-end' }, c.unknownEnd);
  });
  gauge('tapwire_tls_plaintext_stored_packets_total', 'Synthesized TCP packets of decrypted plaintext kept in the store, so snapshots and pcap exports hold it', [], (g) => {
    const c = src.plaintextKept?.();
    if (c) g.set(c.packets);
  });
  gauge('tapwire_tls_plaintext_store_failures_total', 'Plaintext packets the store refused (its error is logged once): missing from pcap exports, still decoded', [], (g) => {
    const c = src.plaintextKept?.();
    if (c) g.set(c.failed);
  });
  const flowsSeen = new Counter({ name: 'tapwire_flows_total', help: 'Flow records built', labelNames: ['protocol'], registers: [registry] });
  return { registry, flowsSeen };
}
