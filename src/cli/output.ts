import type { Entry } from 'har-format';
import { harEntry, harLog } from '../flows/har.js';
import { isHttpLike, isPostgres, type FlowRecord } from '../flows/record.js';
import { GRPC_STATUS_NAMES } from '../protocols/grpc/framing.js';
import { endpoint } from '../common/address.js';

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

/** HAR is one JSON document; entries are streamed into it rather than collected. */
export function har(out: Out): Formatter {
  let first = true;
  return {
    begin() {
      const head = JSON.stringify(harLog([]), null, 0);
      out.write(head.slice(0, head.lastIndexOf('[') + 1));
    },
    record(r) {
      const e: Entry | undefined = harEntry(r);
      if (!e) return;
      out.write(`${first ? '\n' : ',\n'}${JSON.stringify(e)}`);
      first = false;
    },
    end() {
      out.write('\n]}}\n');
    },
  };
}

const pad = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
const rpad = (s: string, n: number) => s.padStart(n);

function bytes(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)}K`;
  return `${(n / 1024 / 1024).toFixed(1)}M`;
}

function clock(t: number): string {
  return new Date(t * 1000).toISOString().slice(11, 23);
}

/** A table for people: one line per flow, widest columns last. */
export function table(out: Out): Formatter {
  let day = '';
  return {
    begin() {
      out.write(`${pad('TIME (UTC)', 12)}  ${pad('CLIENT', 21)}  ${pad('SERVER', 21)}  ${pad('PROTO', 5)}  ${pad('METHOD', 7)}  ${rpad('STATUS', 6)}  ${rpad('MS', 8)}  ${rpad('REQ', 6)}  ${rpad('RESP', 6)}  PATH\n`);
    },
    record(r) {
      const d = new Date(r.start * 1000).toISOString().slice(0, 10);
      if (d !== day) {
        day = d;
        out.write(`── ${d}\n`);
      }
      const notes: string[] = [];
      let method = '-', status = '-', what = '';
      if (isPostgres(r)) {
        const q = r.request, s = r.response;
        method = q?.message === 'Execute' ? 'EXEC' : q?.message === 'Query' ? 'QUERY' : (q?.message ?? '-').toUpperCase().slice(0, 7);
        status = s?.error ? s.error.code : s?.command?.split(' ')[0] ?? '-';
        what = q?.query?.replace(/\s+/g, ' ') ?? (r.postgres?.notification ? `NOTIFY ${r.postgres.notification.channel}` : '');
        if (s?.rows !== undefined && s.command?.startsWith('SELECT')) notes.push(`${s.rows} rows`);
        if (s?.error) notes.push(`${s.error.severity} ${s.error.message}`);
      } else if (isHttpLike(r)) {
        const q = r.request, s = r.response;
        method = q?.method ?? '-';
        status = s?.status !== undefined ? String(s.status) : '-';
        what = q?.path ?? '';
        const gs = s?.grpcStatus;
        if (gs !== undefined) notes.push(`grpc ${gs} ${GRPC_STATUS_NAMES[gs] ?? ''}`.trim());
      }
      if (r.error) notes.push(`${r.error.frame} ${r.error.code} by ${r.error.by}`);
      if (r.incomplete) notes.push(`incomplete: ${r.incompleteReason}`);
      if (r.upgrade) notes.push(`upgrade: ${r.upgrade}`);
      const note = notes.length ? `  [${notes.join('; ')}]` : '';
      out.write(`${pad(clock(r.start), 12)}  ${pad(endpoint(r.src), 21)}  ${pad(endpoint(r.dst), 21)}  `
        + `${pad(r.protocol === 'postgres' ? 'pg' : r.protocol, 5)}  ${pad(method, 7)}  ${rpad(status, 6)}  `
        + `${rpad(r.durationMs.toFixed(1), 8)}  ${rpad(bytes(r.request?.size), 6)}  ${rpad(bytes(r.response?.size), 6)}  `
        + `${what}${note}\n`);
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
