/** The order of query results: start time, then id, so that equal starts still have one order. */
export interface FlowKey { start: number; id: string }

export function compareKeys(a: FlowKey, b: FlowKey): number {
  return a.start - b.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A cursor that is not one this store handed out (the API answers 400). */
export class CursorError extends Error {
  constructor(cursor: string) {
    super(`cursor "${cursor}" is not one this store gave`);
    this.name = 'CursorError';
  }
}

/**
 * A cursor is the key of the last flow of a page: the next page is every flow after it. Being a
 * position in a total order rather than an offset, it stays valid while flows are added and
 * evicted, and paging through it neither repeats nor skips a flow that was there all along.
 */
export function encodeCursor(k: FlowKey): string {
  return Buffer.from(JSON.stringify([k.start, k.id])).toString('base64url');
}

export function decodeCursor(cursor: string): FlowKey {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new CursorError(cursor);
  }
  if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'number' || typeof v[1] !== 'string') throw new CursorError(cursor);
  return { start: v[0], id: v[1] };
}
