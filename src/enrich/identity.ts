import type { FlowRecord, Peer } from '../flows/index.js';
import type { Identity, IdentitySource } from './types.js';

/** The identity fields a record's peer carries. */
export const IDENTITY_FIELDS = ['name', 'namespace', 'workload', 'node'] as const;

function fillPeer(peer: Peer, id: Identity | undefined): void {
  if (!id) return;
  for (const f of IDENTITY_FIELDS) {
    const v = id[f];
    if (v !== undefined) peer[f] = v;
  }
}

/** Fills each side of a record with what `source` knows of its address. */
export function applyIdentity(source: IdentitySource, r: FlowRecord): void {
  fillPeer(r.src, source.lookup(r.src.ip));
  fillPeer(r.dst, source.lookup(r.dst.ip));
}
