/**
 * enrich/: what the wire cannot say, added to records after they are built: which workload an
 * address belongs to. One Enricher interface (types.ts); the static identities file is one
 * (identity-file.ts), Kubernetes will be the next. Enrichers run in order, each in place.
 */
import type { FlowRecord } from '../flows/index.js';
import type { Enricher } from './types.js';

export type { Enricher, Identity, IdentitySource } from './types.js';
export type { ClusterEvent, ClusterEventKind, EventQuery } from './events.js';
export { applyIdentity, fillPeer, IDENTITY_FIELDS } from './identity.js';
export { IdentityFileError, IdentityMap, parseIdentities } from './identity-file.js';

/** Several enrichers as one, applied in the order given. */
export function enrichers(list: readonly Enricher[]): Enricher {
  return { name: list.map((e) => e.name).join('+'), enrich: (r: FlowRecord) => { for (const e of list) e.enrich(r); } };
}
// Kubernetes (issue 16): pod identity from informers, cluster events, pod resource use.
export * from './kubernetes/index.js';
export * from './cluster/index.js';
export * from './usage/index.js';
// Process attribution (issue 18): a connection end's container from its cgroup.
export * from './process/index.js';
