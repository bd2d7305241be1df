import type { FlowRecord } from '../flows/index.js';

/** What is known of the workload behind an address. Every field optional: only the known ones are set. */
export interface Identity {
  name?: string;
  namespace?: string;
  workload?: string;
  node?: string;
  /** The Service behind the address (Kubernetes: a ClusterIP, or a pod an EndpointSlice names). */
  service?: string;
  /** A pod's labels (Kubernetes). */
  labels?: Record<string, string>;
}

/** Anything that knows identities by IP address: the static file, Kubernetes (a later source). */
export interface IdentitySource {
  /**
   * What `ip` was at time `at` (epoch seconds; a record's start): sources that keep a history
   * (Kubernetes) answer for that moment, so a reused IP names the pod that had it then. Sources
   * without one (the static file) ignore `at`.
   */
  lookup(ip: string, at?: number): Identity | undefined;
}

/**
 * A stage between records and their consumers: it adds what the wire cannot say (who a peer is)
 * to a record in place. The static identities file is one; the Kubernetes enricher will be the next.
 */
export interface Enricher {
  readonly name: string;
  enrich(r: FlowRecord): void;
}
