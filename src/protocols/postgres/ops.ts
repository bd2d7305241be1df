import type { Column } from './messages.js';
import type { PgNotice, PgTransaction } from './types.js';
import { AMBIGUOUS_REQUEST, LOST_RESPONSE, type Unit } from './units.js';
import type { PgValue } from './values.js';

/** What the PostgreSQL session queues and collects (session.ts), and how a cut batch's answers are placed. */

export const UNKNOWN_PREPARED = 'query unknown (prepared before capture)';
/**
 * A named statement whose Parse was not seen although the capture saw the connection start: it
 * was lost in a gap (state loss, like an HPACK table). Parameters and result are still the
 * statement's own; only its SQL text is missing.
 */
export const STATEMENT_UNKNOWN = 'statement-unknown';
/** An Execute whose Bind was lost in a gap: its portal, statement and parameters are unknown. */
export const PORTAL_LOST = 'gap';

/**
 * The server batch being read: the client batch it answers (or why none), whether it is
 * extended-protocol, and, once a hole cut it, the answers read after the hole (`cut`), placed
 * when its ReadyForQuery comes (ops.ts alignTail). `whole`: the first of them began after the hole.
 */
export interface Batch {
  unit?: Unit<Op>;
  reason?: string;
  extended: boolean;
  cut?: { tail: TailResult[]; checked: boolean; whole: boolean };
}

export interface Mark {
  time: number;
  frame: number;
}

/** A frontend message that the backend answers, queued in order (the protocol answers in order). */
export type Op =
  | { kind: 'query'; sql: string; parts: string[]; index: number; at: Mark; end: Mark; size: number }
  | { kind: 'execute'; portal: string; statement: string; sql?: string; params: PgValue[]; at: Mark; end: Mark; size: number; unknown?: string }
  | { kind: 'parse' | 'bind' | 'close' | 'sync' | 'function'; at: Mark; end: Mark; size: number }
  | { kind: 'describe'; target: 'S' | 'P'; name: string; at: Mark; end: Mark; size: number };

/** The result being collected for the op at the head of the queue. */
export interface Result {
  start?: Mark;
  columns?: Column[];
  rows: number;
  preview: PgValue[][];
  notices: PgNotice[];
  copy?: { direction: 'in' | 'out' | 'both'; bytes: number; rows: number; text: boolean };
  size: number;
}

export type Response = NonNullable<PgTransaction['response']>;

export function freshResult(): Result {
  // Every field present from the start: one object shape for all results (V8 hidden classes).
  return { start: undefined, columns: undefined, rows: 0, preview: [], notices: [], copy: undefined, size: 0 };
}

/** A statement's answer read after a hole cut its batch's answer (session.ts serverLost). */
export interface TailResult {
  response: Response;
  error: boolean;
}

/**
 * The answers read after a hole, placed on the Executes of their batch. The backend answers a
 * batch's Executes in order and ends with one ReadyForQuery (protocol-flow.html, "Extended
 * Query"), so the last n answers before it are those of the last n Executes — unless an error
 * made it skip the rest to Sync, or more answers came than Executes were seen (then nothing is
 * placed: undefined). Returns, per Execute, its answer or undefined (lost in the hole).
 */
export function alignTail(executes: number, tail: TailResult[]): (TailResult | undefined)[] | undefined {
  if (tail.length > executes || tail.some((t) => t.error)) return undefined;
  const out: (TailResult | undefined)[] = new Array<TailResult | undefined>(executes - tail.length).fill(undefined);
  return out.concat(tail);
}

/** A request half's envelope: from the packet of its first message's first byte to that of its last. */
export function requestOf(op: Op, message: 'Query' | 'Execute' | 'FunctionCall'): NonNullable<PgTransaction['request']> {
  return { start: op.at.time, end: op.end.time, frames: [op.at.frame, op.end.frame], size: op.size, message };
}

/** The request half of a Query op: the statement of a multi-statement string being answered. */
export function queryRequest(op: Extract<Op, { kind: 'query' }>): NonNullable<PgTransaction['request']> {
  const query = op.parts.length > 1 && op.parts[op.index] !== undefined ? op.parts[op.index]! : op.sql;
  return { start: op.at.time, end: op.end.time, frames: [op.at.frame, op.end.frame], size: op.size, message: 'Query', query };
}

export function executeRequest(op: Extract<Op, { kind: 'execute' }>): NonNullable<PgTransaction['request']> {
  const request = requestOf(op, 'Execute');
  if (op.sql !== undefined) request.query = op.sql;
  request.statement = op.statement;
  if (op.portal) request.portal = op.portal;
  if (op.params.length) request.params = op.params;
  return request;
}

/** The response half from the result collected for a statement and how it ended. */
export function responseOf(r: Result, start: Mark, end: Mark, out: { command?: string; empty?: true; suspended?: true; error?: PgNotice }): NonNullable<PgTransaction['response']> {
  const resp: NonNullable<PgTransaction['response']> = { start: start.time, end: end.time, frames: [start.frame, end.frame], size: r.size };
  if (out.command !== undefined) resp.command = out.command;
  if (out.command !== undefined || r.rows > 0) resp.rows = r.rows;
  if (r.columns) resp.columns = r.columns.map((c) => c.name);
  if (r.preview.length) resp.preview = r.preview;
  if (out.error) resp.error = out.error;
  if (r.notices.length) resp.notices = r.notices;
  if (r.copy) {
    // The server's tag ("COPY 7") is the authority on rows: a HEADER line or the "\." end marker
    // are lines but not rows. Counted lines stand in when no tag came (a cut capture).
    const tag = out.command !== undefined ? /^COPY (\d+)$/.exec(out.command) : null;
    resp.copy = { direction: r.copy.direction, bytes: r.copy.bytes, rows: tag ? Number(tag[1]) : r.copy.rows };
  }
  if (out.suspended) resp.suspended = true;
  if (out.empty) resp.empty = true;
  return resp;
}

type Emitted = Omit<PgTransaction, 'session'>;

/** Request halves of the statements of `ops` that will get no answer (a Query string whole when none of it was answered). */
export function unanswered(ops: Op[]): Emitted[] {
  const out: Emitted[] = [];
  for (const op of ops) {
    if (op.kind === 'query' && op.index === 0) {
      const request = queryRequest(op);
      request.query = op.sql;
      out.push({ request });
    }
    else if (op.kind === 'execute') out.push({ request: executeRequest(op) });
  }
  return out;
}

/**
 * A cut batch's records at its ReadyForQuery (session.ts serverLost): its Executes with the
 * answers read after the hole where alignTail places them, the rest without (lost in the hole),
 * and the answers alone when they cannot be placed. Each with its incomplete reason.
 */
export function placeTail(ops: Op[], cut: NonNullable<Batch['cut']>): [Emitted, string | undefined][] {
  const execs = ops.filter((o): o is Extract<Op, { kind: 'execute' }> => o.kind === 'execute');
  const placed = ops.some((o) => o.kind === 'query') ? undefined : alignTail(execs.length, cut.tail);
  const out: [Emitted, string | undefined][] = execs.map((op, i) => {
    const t = placed?.[i];
    if (!t) return [{ request: executeRequest(op) }, LOST_RESPONSE];
    // The first answer after the hole may have begun in it (not a BindComplete first): marked.
    return [{ request: executeRequest(op), response: t.response }, t === cut.tail[0] && !cut.whole ? 'gap' : op.unknown];
  });
  for (const r of unanswered(ops.filter((o) => o.kind === 'query'))) out.push([r, LOST_RESPONSE]);
  if (!placed) for (const t of cut.tail) out.push([{ response: t.response }, AMBIGUOUS_REQUEST]);
  return out;
}
