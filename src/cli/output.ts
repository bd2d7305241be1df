import type { Entry } from 'har-format';
import { harEntry, harLog, httpHalves, recordModule, type FlowRecord } from '../flows/index.js';
import { endpoint } from '../common/index.js';

/**
 * Buffered stdout writer with back-pressure: records are joined into large writes, and the
 * reader waits (afterChunk) while the pipe is full, so a slow consumer never makes us buffer
 * the whole capture.
 */
export class Out {
  private parts: string[] = [];
  private size = 0;
  private blocked: Promise<void> | undefined;
  closed = false;

  constructor(private readonly stream: NodeJS.WritableStream = process.stdout) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // A reader that went away (`| head`) is not an error of ours.
      if (err.code === 'EPIPE') this.closed = true;
      else throw err;
    });
  }

  write(s: string): void {
    if (this.closed) return;
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 1 << 16) this.flush();
  }

  flush(): void {
    if (this.size === 0 || this.closed) return;
    const ok = this.stream.write(this.parts.join(''));
    this.parts = [];
    this.size = 0;
    if (!ok && !this.blocked) {
      this.blocked = new Promise((resolve) => this.stream.once('drain', () => {
        this.blocked = undefined;
        resolve();
      }));
    }
  }

  /** Resolves when the stream can take more. */
  ready(): Promise<void> | void {
    return this.blocked;
  }

  async end(): Promise<void> {
    this.flush();
    if (this.blocked) await this.blocked;
  }
}

export interface Formatter {
  begin(): void;
  record(r: FlowRecord): void;
  end(): void;
}

export function jsonl(out: Out): Formatter {
  return { begin() {}, record: (r) => out.write(`${JSON.stringify(r)}\n`), end() {} };
}

/** HAR output, and the flows it could not hold, counted by why. */
export interface HarFormatter extends Formatter {
  written: number;
  skipped: Record<string, number>;
}

/**
 * HAR is one JSON document; entries are streamed into it rather than collected. HAR 1.2 describes
 * HTTP exchanges only: a PostgreSQL statement, or an HTTP response whose request was not seen,
 * has no entry, and is counted in `skipped` so the summary can say so.
 */
export function har(out: Out): HarFormatter {
  let first = true;
  const skipped: Record<string, number> = {};
  const f: HarFormatter = {
    written: 0,
    skipped,
    begin() {
      const head = JSON.stringify(harLog([]), null, 0);
      out.write(head.slice(0, head.lastIndexOf('[') + 1));
    },
    record(r) {
      const e: Entry | undefined = harEntry(r);
      if (!e) {
        const why = httpHalves(r) ? 'no request seen' : `${recordModule(r).title}: HAR holds HTTP exchanges only`;
        skipped[why] = (skipped[why] ?? 0) + 1;
        return;
      }
      out.write(`${first ? '\n' : ',\n'}${JSON.stringify(e)}`);
      first = false;
      f.written++;
    },
    end() {
      out.write('\n]}}\n');
    },
  };
  return f;
}

const pad = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
const rpad = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padStart(n));

function bytes(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  return `${(n / 1024 / 1024).toFixed(1)}M`;
}

function clock(t: number): string {
  return new Date(t * 1000).toISOString().slice(11, 23);
}

/** One row's cells, before they are fitted to a width. */
interface Row {
  time: string; client: string; server: string; proto: string; method: string;
  status: string; ms: string; req: string; resp: string; what: string;
}

type Column = Exclude<keyof Row, 'what'>;

/** The fixed columns, in order, with their width and alignment. */
const COLUMNS: readonly { key: Column; title: string; width: number; right?: true }[] = [
  { key: 'time', title: 'TIME (UTC)', width: 12 },
  { key: 'client', title: 'CLIENT', width: 21 },
  { key: 'server', title: 'SERVER', width: 21 },
  { key: 'proto', title: 'PROTO', width: 5 },
  { key: 'method', title: 'METHOD', width: 7 },
  { key: 'status', title: 'STATUS', width: 6, right: true },
  { key: 'ms', title: 'MS', width: 8, right: true },
  { key: 'req', title: 'REQ', width: 6, right: true },
  { key: 'resp', title: 'RESP', width: 6, right: true },
];

/** Least useful first: what a narrow terminal gives up so that the call itself stays readable. */
const DROP_ORDER: readonly Column[] = ['req', 'resp', 'client', 'proto', 'time', 'ms'];
/** The path or SQL column keeps at least this much before another column is dropped. */
const MIN_WHAT = 30;
const GAP = 2;

/**
 * Which columns fit in `width` characters (undefined: all of them, and nothing is cut). Columns
 * are dropped in DROP_ORDER until the path or SQL column has MIN_WHAT characters.
 */
export function fitColumns(width: number | undefined): readonly (typeof COLUMNS)[number][] {
  let cols = [...COLUMNS];
  if (width === undefined) return cols;
  const fixed = () => cols.reduce((n, c) => n + c.width + GAP, 0);
  for (const key of DROP_ORDER) {
    if (width - fixed() >= MIN_WHAT) break;
    cols = cols.filter((c) => c.key !== key);
  }
  return cols;
}

/** The terminal's width when stdout is one; undefined (uncut) when piped, or with --wide. */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number | undefined {
  return stream.isTTY && stream.columns > 0 ? stream.columns : undefined;
}

/**
 * A table for people: one line per flow, the path or SQL last. `width` fits every line to a
 * terminal (the last column cut with "…", the least useful columns dropped when narrow);
 * undefined leaves lines uncut, for pipes and --wide.
 */
export function table(out: Out, width: number | undefined): Formatter {
  let day = '';
  const cols = fitColumns(width);
  const fixed = cols.reduce((n, c) => n + c.width + GAP, 0);
  const line = (cells: Row): string => {
    const head = cols.map((c) => (c.right ? rpad : pad)(cells[c.key], c.width)).join(' '.repeat(GAP));
    const room = width === undefined ? Infinity : Math.max(1, width - fixed);
    const what = cells.what.length > room ? `${cells.what.slice(0, room - 1)}…` : cells.what;
    return `${head}${' '.repeat(GAP)}${what}`.trimEnd();
  };
  return {
    begin() {
      out.write(`${line({ time: 'TIME (UTC)', client: 'CLIENT', server: 'SERVER', proto: 'PROTO', method: 'METHOD', status: 'STATUS', ms: 'MS', req: 'REQ', resp: 'RESP', what: 'PATH / QUERY' })}\n`);
    },
    record(r) {
      const d = new Date(r.start * 1000).toISOString().slice(0, 10);
      if (d !== day) {
        day = d;
        out.write(`── ${d}\n`);
      }
      const t = recordModule(r).table(r);
      const notes = t.notes;
      if (r.incomplete) notes.push(`incomplete: ${r.incompleteReason}`);
      notes.push(...t.tail);
      const note = notes.length ? `  [${notes.join('; ')}]` : '';
      out.write(`${line({
        time: clock(r.start), client: endpoint(r.src), server: endpoint(r.dst), proto: recordModule(r).column,
        method: t.method, status: t.status, ms: r.durationMs.toFixed(1), req: bytes(r.request?.size), resp: bytes(r.response?.size), what: `${t.what}${note}`,
      })}\n`);
    },
    end() {},
  };
}

/**
 * Records leave the pipeline when their exchange completes, so a long request prints after the
 * short calls it made. People read tables and HAR in start order: hold up to `max` records and
 * release them oldest-start first (bounded, so memory stays flat on big files).
 */
export function byStart(inner: Formatter, max = 10_000): Formatter {
  let held: FlowRecord[] = [];
  const release = (n: number) => {
    held.sort((a, b) => a.start - b.start);
    for (const r of held.slice(0, n)) inner.record(r);
    held = held.slice(n);
  };
  return {
    begin: () => inner.begin(),
    record(r) {
      held.push(r);
      if (held.length >= max) release(max / 2);
    },
    end() {
      release(held.length);
      inner.end();
    },
  };
}
