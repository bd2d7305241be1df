import type { FlowRecord } from '../flows/index.js';
import { viewFlow, type FlowView } from './bodies.js';
import { largest, truncationNote, type Truncation } from './bound.js';

/**
 * One flow bounded like any result (get_flow, flow://). Bodies give way first: what is kept of
 * each is halved until the record fits, then they are left out. What is left can still be large
 * without a body — a PostgreSQL query text of a bulk INSERT, its parameters, header values, gRPC
 * metadata — so then every long string is cut to one length (the longest that fits), and if even
 * that is not enough, long lists and maps keep only their first entries. All of it is named in
 * `payloads` and counted in `truncated`.
 */

/** Strings this short are never cut: ids, peers, methods, statuses. */
const MIN_STRING = 64;
/** Lists and maps this short are never cut. */
const MIN_ENTRIES = 8;
/** Paths named one by one in `payloads`; the rest are counted. */
const NAMED = 10;

export interface BoundedFlow extends FlowView {
  truncated?: Truncation;
}

/**
 * `fits` measures the whole result built from a view. `maxBytes` is what the caller asked to keep
 * of each body (undefined: bodies left out), `requested` whether bodies were asked for at all.
 */
export function boundFlow(r: FlowRecord, maxBytes: number | undefined, maxTokens: number, fits: (v: BoundedFlow) => boolean): BoundedFlow {
  let max = maxBytes;
  let v: BoundedFlow = viewFlow(r, max);
  if (fits(v)) return v;
  while (max !== undefined && max > 64 && !fits(v)) v = viewFlow(r, (max = Math.floor(max / 2)));
  if (!fits(v)) v = viewFlow(r, (max = undefined));
  const cuts = fits(v) ? undefined : cutLeaves(v, fits);
  const more = cuts ? 'long fields were cut too; the full record is in a capture (export_pcap, then get_flow with capture over a larger --max-tokens)' : 'each body was cut further to fit';
  v.truncated = truncationNote(maxTokens, {
    ...(v.bytesOmitted ? { bodyBytesOmitted: v.bytesOmitted } : {}),
    ...(cuts?.fields ? { fieldsCut: cuts.fields, charsOmitted: cuts.chars } : {}),
  }, more);
  return v;
}

interface Leaf {
  holder: Record<string, unknown> | unknown[];
  key: string | number;
  path: string;
  original: unknown;
}

/**
 * Cuts long strings of the view's flow to the longest common length that fits, then long lists
 * and maps to the most entries that fit; names them in `payloads`. In place.
 */
function cutLeaves(v: BoundedFlow, fits: (v: BoundedFlow) => boolean): { fields: number; chars: number } {
  const strings: Leaf[] = [], lists: Leaf[] = [];
  walk(v.flow as unknown as Record<string, unknown>, '', strings, lists);
  const basePayloads = v.payloads;
  let chars = 0;
  const setStrings = (cap: number) => {
    chars = 0;
    for (const l of strings) {
      const s = l.original as string;
      const cut = s.length > cap;
      if (cut) chars += s.length - cap;
      set(l, cut ? `${s.slice(0, cap)}…` : s);
    }
  };
  const setLists = (cap: number) => {
    for (const l of lists) set(l, entries(l.original, cap));
  };
  const longest = strings.reduce((m, l) => Math.max(m, (l.original as string).length), MIN_STRING);
  let cap = largest(MIN_STRING, longest, (c) => { setStrings(c); return fits(v); });
  setStrings(cap);
  let listCap: number | undefined;
  if (!fits(v) && lists.length) {
    const most = lists.reduce((m, l) => Math.max(m, size(l.original)), MIN_ENTRIES);
    listCap = largest(1, most, (c) => { setLists(c); return fits(v); });
    setLists(listCap);
  }
  const cutPaths = [
    ...strings.filter((l) => (l.original as string).length > cap).map((l) => `${l.path} (cut to ${cap} of ${(l.original as string).length} characters)`),
    ...(listCap === undefined ? [] : lists.filter((l) => size(l.original) > listCap!).map((l) => `${l.path} (first ${listCap} of ${size(l.original)} entries)`)),
  ];
  v.payloads = [...basePayloads, ...cutPaths.slice(0, NAMED), ...(cutPaths.length > NAMED ? [`… and ${cutPaths.length - NAMED} more fields cut`] : [])];
  // The payload list is part of the result: one more check, shortening the cap if the names tipped it over.
  while (!fits(v) && cap > MIN_STRING) {
    setStrings((cap = Math.max(MIN_STRING, Math.floor(cap / 2))));
    if (listCap !== undefined) setLists(listCap);
  }
  return { fields: cutPaths.length, chars };
}

function walk(o: Record<string, unknown> | unknown[], path: string, strings: Leaf[], lists: Leaf[]): void {
  for (const [k, val] of Object.entries(o)) {
    const key = Array.isArray(o) ? Number(k) : k;
    const p = Array.isArray(o) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
    if (typeof val === 'string' && val.length > MIN_STRING) strings.push({ holder: o, key, path: p, original: val });
    else if (val !== null && typeof val === 'object') {
      walk(val as Record<string, unknown>, p, strings, lists);
      if (size(val) > MIN_ENTRIES) lists.push({ holder: o, key, path: p, original: val });
    }
  }
}

function set(l: Leaf, value: unknown): void {
  (l.holder as Record<string | number, unknown>)[l.key] = value;
}

function size(v: unknown): number {
  return Array.isArray(v) ? v.length : Object.keys(v as object).length;
}

/** The first `cap` entries of a list or map (whose strings were cut already). */
function entries(v: unknown, cap: number): unknown {
  if (Array.isArray(v)) return v.slice(0, cap);
  return Object.fromEntries(Object.entries(v as object).slice(0, cap));
}
