import { Packr } from 'msgpackr';
import type { FlowRecord } from '../flows/index.js';

/**
 * Binary form of flow records (store segments, snapshots). Plain maps, no shared structures:
 * every encoded record decodes on its own, so a torn segment loses at most the record it cut.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });

export function encodeRecord(r: FlowRecord): Buffer {
  return packr.pack(r);
}

export function decodeRecord(b: Uint8Array): FlowRecord {
  return packr.unpack(b) as FlowRecord;
}
