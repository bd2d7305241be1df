import type { FlowRecord, Peer } from '../flows/index.js';
import type { Identity, IdentitySource } from './types.js';

/** The identity fields a record's peer carries. */
export const IDENTITY_FIELDS = ['name', 'namespace', 'workload', 'node', 'service'] as const;

/** Sets what `id` knows on a record's peer (labels copied, so records never share one object). */
export function fillPeer(peer: Peer, id: Identity | undefined): void {
  if (!id) return;
  for (const f of IDENTITY_FIELDS) {
    const v = id[f];
    if (v !== undefined) peer[f] = v;
  }
  if (id.labels) peer.labels = { ...id.labels };
}

/** Fills each side of a record with what `source` knew of its address at the record's start. */
export function applyIdentity(source: IdentitySource, r: FlowRecord): void {
  fillPeer(r.src, source.lookup(r.src.ip, r.start));
  fillPeer(r.dst, source.lookup(r.dst.ip, r.start));
}
