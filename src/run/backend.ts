import type { EventQuery, UsageAnswer } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { DecodeCoverage } from '../pipeline/index.js';
import type { EventPage, FlowPage, FlowQuery, FlowSource } from '../service/index.js';
import type { Snapshot } from '../store/index.js';
import type { Evidence, PartialData, Severity, VerdictName } from '../verify/index.js';

export type { FlowPage, FlowQuery };

/**
 * Where live flows, snapshots and run history live: a running agent (through its flow API), or
 * this process capturing locally into a data directory. `tapwire run`, `run_and_verify` and the
 * MCP server's snapshot tools are written once against this interface. Its reading half is the
 * one port's (service/source.ts FlowSource: describe, query, flow, close, with the same query,
 * page and cursor); what it adds is capture control (snapshots this process starts and stops,
 * pcap export) and the run log.
 */
export interface Backend extends Pick<FlowSource, 'describe' | 'query' | 'flow' | 'close'> {
  readonly kind: 'agent' | 'local';
  /** One line for people: "agent at http://127.0.0.1:8899", "local capture on lo (data in …)". */
  describe(): string;
  /**
   * Opens a snapshot now; a local backend starts capturing (on `iface` when given, else its
   * default). `filter` is a CEL flow filter kept with the snapshot; `bpf` is a capture filter
   * for a local capture only (an agent's capture filter is fixed when it starts: it refuses one).
   */
  startSnapshot(o: { name?: string; filter?: string; iface?: string; bpf?: string }): Promise<{ id: string }>;
  /** Drains the capture up to this instant, then closes the snapshot. */
  stopSnapshot(id: string): Promise<StoppedSnapshot>;
  listSnapshots(): Promise<Snapshot[]>;
  /** Undefined when there is no such snapshot. */
  getSnapshot(id: string): Promise<Snapshot | undefined>;
  /** Flows captured so far into an open snapshot, when that is cheap to know (progress reports). */
  capturedFlows?(id: string): number | undefined;
  /**
   * A page of flows in start order: of one snapshot, or of a time window. A local backend keeps
   * flows per snapshot, so it needs `snapshot` (it says so when it is missing).
   */
  query(q: FlowQuery): Promise<FlowPage>;
  /** Every flow of a snapshot (bounded; throws when there are more than `max`). */
  snapshotFlows(id: string, max?: number): Promise<FlowRecord[]>;
  /**
   * What the capture of a snapshot stopped by this backend saw but did not decode (connections by
   * why, UDP flows, their servers), for the verdict's coverage. Undefined when not known: an
   * agent's API does not say, and a local snapshot stopped by another process was not decoded here.
   */
  decodeCoverage?(id: string): DecodeCoverage | undefined;
  /**
   * What the last snapshotFlows of `id` did not get: agents the hub could not reach (issue 16).
   * Undefined when the pages were whole, or the backend cannot be partial (a local capture).
   */
  partialOf?(id: string): PartialData | undefined;
  /** Cluster events of a window or a snapshot's (FlowSource.events); absent where none are kept (a local capture). */
  events?(q: EventQuery & { snapshot?: string }): Promise<EventPage>;
  /** The pods' ("namespace/name") CPU and memory over a window, where the backend can say (issue 16). */
  usage?(pods: string[], since: number, until: number): Promise<UsageAnswer>;
  /** Undefined when there is no such flow. */
  flow(id: string): Promise<FlowRecord | undefined>;
  /** Writes the snapshot's packets as pcap to `dest`; `loss` states what the packet ring no longer held. */
  exportPcap(snapshot: string, dest: string): Promise<{ path: string; bytes: number; loss?: string }>;
  addRun(r: RunRecord): Promise<void>;
  /** Kept runs, newest first: the newest `limit`, else all that the run log keeps (its bound, 5 000). */
  runs(q?: { limit?: number }): Promise<RunRecord[]>;
  close(): Promise<void>;
}

export type StoppedSnapshot = Snapshot & {
  /** Whether a drain marker proved every packet before the stop was captured (live/barrier.ts). */
  drained?: 'proven' | 'unproven';
};

/**
 * One run of a test command bracketed by capture (`tapwire run`, `run_and_verify`), as kept in the
 * store for `run_history` and `runs_touching`. Times are epoch seconds.
 */
export interface RunRecord {
  /** "run-" and 12 hex digits. */
  id: string;
  startedAt: number;
  endedAt: number;
  /** The command as given (argv joined with spaces, or the shell string). */
  command: string;
  cwd: string;
  /** Null when it was killed by a signal (then `signal` is set). */
  exitCode: number | null;
  signal?: string;
  /** Killed because it ran past its timeout. */
  timedOut?: boolean;
  /** Cancelled (AbortSignal, Ctrl-C): the traffic was not verified, the verdict is inconclusive. */
  cancelled?: boolean;
  /** The code that ran, when cwd is a git work tree: HEAD, and a hash of uncommitted changes ('' when clean). */
  code?: { commit: string; dirty: string };
  /** The spec verified, by name (its file or "inline") and a hash of its text. */
  spec?: { name: string; hash: string };
  verdict: VerdictName;
  reason?: string;
  /** Every finding, by the fingerprint `diff` uses, with a little of its evidence (at most 3 entries). */
  findings: { fingerprint: string; kind: string; severity: Severity; summary: string; evidence: Evidence[] }[];
  /** Where the run's traffic is kept: a snapshot id of the backend. */
  snapshot?: string;
  source: 'agent' | 'local';
  flows: number;
  /** Whether a drain marker proved the snapshot holds all the traffic up to the command's exit. */
  drained?: 'proven' | 'unproven';
  /**
   * Whether its traffic was verified: the command started, was not cancelled, the snapshot was
   * stopped and read, and held flows. Only such runs say a finding was absent (history.ts).
   * Absent in runs kept before it existed: then judged from `cancelled` and `flows`.
   */
  verified?: boolean;
  /** What the run exercised: service names (or addresses), and endpoints "service METHOD /path". */
  touched: { services: string[]; endpoints: string[] };
}
