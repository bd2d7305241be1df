/**
 * A Server-Sent Events reader over fetch, for following a tapwire agent's streams
 * (`/api/flows/stream`, `/api/verdicts/stream`) from the CLI and the MCP server.
 *
 * The parser follows the WHATWG HTML "event stream interpretation" (§9.2.6): lines end in CRLF,
 * LF or CR; `:` starts a comment; `field: value` with one optional space after the colon; `data`
 * lines join with "\n"; a blank line dispatches the event (none when no data was given); `id`
 * persists to later events; a leading BOM is skipped.
 */

import { answerReason, unreachableReason } from './answers.js';

export interface SseEvent {
  /** The `event:` field, "message" when none was given. */
  event: string;
  /** The last `id:` seen on the stream so far (as the spec's last event ID), if any. */
  id?: string;
  data: string;
}

/** Characters one line or one event's data may hold: a stream that exceeds it is broken, not slow. */
export const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/** A stream that could not be opened or read: the URL and what went wrong. */
export class SseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SseError';
  }
}

/** A push parser: text in (any split), whole events out. */
export class SseParser {
  private line = '';
  /** A chunk ended in CR: a LF starting the next one belongs to the same line ending. */
  private afterCr = false;
  private started = false;
  private data: string[] = [];
  private dataChars = 0;
  private event = '';
  private lastId: string | undefined;

  push(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    if (text.length === 0) return out;
    let i = 0;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    if (this.afterCr && text[i] === '\n') i++;
    this.afterCr = false;
    while (i < text.length) {
      const cr = text.indexOf('\r', i), lf = text.indexOf('\n', i);
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) {
        this.line += text.slice(i);
        if (this.line.length > MAX_EVENT_CHARS) throw new SseError(`a line longer than ${MAX_EVENT_CHARS} characters`);
        break;
      }
      const line = this.line + text.slice(i, end);
      this.line = '';
      i = end + 1;
      if (text[end] === '\r') {
        if (i === text.length) this.afterCr = true;
        else if (text[i] === '\n') i++;
      }
      const e = this.field(line);
      if (e) out.push(e);
    }
    return out;
  }

  /** The stream ended: an event without its closing blank line is discarded (as the spec says). */
  end(): void {
    this.line = '';
    this.data = [];
    this.dataChars = 0;
    this.event = '';
  }

  private field(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'data') {
      this.dataChars += value.length + 1;
      if (this.dataChars > MAX_EVENT_CHARS) throw new SseError(`an event with more than ${MAX_EVENT_CHARS} characters of data`);
      this.data.push(value);
    } else if (name === 'event') this.event = value;
    else if (name === 'id' && !value.includes('\0')) this.lastId = value;
    // `retry` and unknown fields are ignored: this reader does not reconnect by itself.
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    const data = this.data, event = this.event;
    this.data = [];
    this.dataChars = 0;
    this.event = '';
    if (data.length === 0) return undefined;
    return { event: event || 'message', ...(this.lastId !== undefined ? { id: this.lastId } : {}), data: data.join('\n') };
  }
}

/** Events of a response body. Ends quietly when `signal` aborts. */
export async function* readEvents(body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, signal?: AbortSignal): AsyncGenerator<SseEvent> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  try {
    for await (const chunk of body) {
      yield* parser.push(decoder.decode(chunk, { stream: true }));
    }
    yield* parser.push(decoder.decode());
    parser.end();
  } catch (e) {
    if (signal?.aborted) return;
    throw e;
  }
}

export interface FollowOptions {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Sent as Last-Event-ID, so a stream that keeps history can resume after it. */
  lastEventId?: string;
}

/**
 * Opens `url` as an event stream. Resolves once the server has answered (for tapwire's streams,
 * once it has subscribed this client), with the events to iterate: they end when the server ends
 * the stream, or quietly when `signal` aborts. A server that cannot be reached, answers with an
 * error status, or is not an event stream rejects with an SseError naming the URL and why.
 */
export async function openEvents(url: string | URL, o: FollowOptions = {}): Promise<AsyncGenerator<SseEvent>> {
  const u = new URL(url);
  let res: Response;
  try {
    res = await fetch(u, {
      headers: { accept: 'text/event-stream', ...o.headers, ...(o.lastEventId !== undefined ? { 'last-event-id': o.lastEventId } : {}) },
      signal: o.signal,
    });
  } catch (e) {
    if (o.signal?.aborted) return readEvents([]);
    throw new SseError(`cannot reach ${u.origin}: ${unreachableReason(e)}`);
  }
  if (!res.ok) throw new SseError(`${u.pathname} answered ${res.status}: ${answerReason(await res.text().catch(() => ''))}`);
  const type = res.headers.get('content-type') ?? '';
  if (!/^text\/event-stream\b/i.test(type) || !res.body) {
    await res.body?.cancel();
    throw new SseError(`${u.pathname} is not an event stream (content-type ${JSON.stringify(type)})`);
  }
  return readEvents(res.body as unknown as AsyncIterable<Uint8Array>, o.signal);
}

/** `openEvents`, iterated: `for await (const e of followEvents(url, { signal }))`. */
export async function* followEvents(url: string | URL, o: FollowOptions = {}): AsyncGenerator<SseEvent> {
  yield* await openEvents(url, o);
}
