import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { shortHash } from '../common/index.js';
import type { FlowRecord } from '../flows/index.js';
import { compileFilter, type FlowPredicate } from '../query/index.js';
import { flowQueryFields, timeField } from '../requests/index.js';
import { timeOf } from '../service/index.js';
import { parseSpec, type Spec } from '../verify/index.js';
import { ArgError } from './errors.js';

/**
 * Tool arguments the schemas cannot judge alone: times, CEL filters, specs and cursors. Each
 * failure is an ArgError naming the argument.
 */

/** The shared flow query's fields (service/query.ts), for tools that take them one by one. */
export const timeArg = timeField;
export const filterArg = flowQueryFields.filter;
export const captureArg = z.string().min(1).max(4096).describe('a pcap or pcapng file, relative to the server\'s working directory; the flows then come from it, offline');

/** since/until as epoch seconds; until before since is an error naming `until`. */
export function window(a: { since?: string; until?: string }): { since?: number; until?: number } {
  const out: { since?: number; until?: number } = {};
  for (const k of ['since', 'until'] as const) {
    const v = a[k];
    if (v === undefined) continue;
    // The time parsing, and its refusal ("since: … is neither RFC 3339 …"), of every source.
    out[k] = timeOf(k, v);
  }
  if (out.since !== undefined && out.until !== undefined && out.until < out.since) {
    throw new ArgError('until', `${a.until} is before since ${a.since}`);
  }
  return out;
}

/** Whether a flow started within the window (ends included). */
export function inWindow(f: FlowRecord, w: { since?: number; until?: number }): boolean {
  return (w.since === undefined || f.start >= w.since) && (w.until === undefined || f.start <= w.until);
}

/** Compiled, or a FilterError ("filter: … at position n") for the result's text. */
export function filterOf(expr: string | undefined): FlowPredicate | undefined {
  return expr === undefined || expr.trim() === '' ? undefined : compileFilter(expr);
}

/** A spec argument: a file path (one line ending .yaml, .yml or .json), else inline YAML or JSON. */
export interface SpecArg {
  spec: Spec;
  /** "inline", or the file as given. */
  name: string;
  /** Of the text: runs with the same spec are found by it. */
  hash: string;
}

export async function specOf(text: string | undefined, cwd: string): Promise<SpecArg | undefined> {
  if (text === undefined || text.trim() === '') return undefined;
  const t = text.trim();
  if (!t.includes('\n') && /\.(ya?ml|json)$/i.test(t)) {
    const path = resolve(cwd, t);
    let body: string;
    try {
      body = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ArgError('spec', `"${t}" looks like a spec file, but ${code === 'ENOENT' ? `there is no such file (looked for ${path})` : `it cannot be read (${code})`}; inline YAML or JSON works too`);
    }
    // SpecError messages start with the source: "spec file x.yaml: checks[1].expect: … (line 9)".
    return { spec: parseSpec(body, `spec file ${t}`, dirname(path)), name: t, hash: shortHash(body) };
  }
  return { spec: parseSpec(text, 'spec', cwd), name: 'inline', hash: shortHash(text) };
}

/**
 * Cursors of verify's pages of findings (a verdict is judged whole, then cut here): the offset of
 * the next finding, tied to the query it belongs to, so a cursor reused with other arguments is
 * refused rather than wrong. Pages of flows use the one flow cursor of service/query.ts.
 */
export function cursorOut(offset: number, query: unknown): string {
  return `o${offset}.${shortHash(JSON.stringify(query)).slice(0, 8)}`;
}

export function cursorIn(cursor: string | undefined, query: unknown): number {
  if (cursor === undefined || cursor === '') return 0;
  const m = /^o(\d+)\.([0-9a-f]{8})$/.exec(cursor);
  if (!m) throw new ArgError('cursor', `"${cursor.slice(0, 40)}" is not a cursor this server gave: pass the "next" of the previous page`);
  if (m[2] !== shortHash(JSON.stringify(query)).slice(0, 8)) {
    throw new ArgError('cursor', 'belongs to another query: keep capture, filter, since and until as they were for the first page');
  }
  return Number(m[1]);
}
