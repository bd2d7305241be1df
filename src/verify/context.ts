import type { FlowRecord } from '../flows/index.js';
import { attribute, type Attribution } from './group.js';
import { ServiceNames } from './services.js';

/** What every detector shares, computed once per verification. */
export interface DetectContext {
  /** Outbound call → the inbound request it was made while handling (causal grouping). */
  parents: Map<FlowRecord, Attribution>;
  names: ServiceNames;
}

export function detectContext(flows: readonly FlowRecord[], names = new ServiceNames()): DetectContext {
  return { parents: attribute(flows), names };
}

/** Groups items by a key, skipping undefined keys; insertion order is kept. */
export function groupBy<T>(items: Iterable<T>, key: (t: T) => string | undefined): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    if (k === undefined) continue;
    const list = out.get(k);
    if (list) list.push(it);
    else out.set(k, [it]);
  }
  return out;
}
