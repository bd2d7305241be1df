import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClusterEvent } from '../enrich/index.js';
import type { FlowRecord } from '../flows/index.js';
import type { Snapshot } from '../store/index.js';
import { answerReason, unreachableReason } from './answers.js';
import { openEvents, type SseEvent } from './sse.js';

/**
 * Anything that went wrong talking to an agent: unreachable, an error answer, or an answer that
 * is not what the flow API promises. The message names the agent and the path, and says why.
 */
export class AgentClientError extends Error {
  /** `reason`: what the agent's error answer said (its `{ "error": "…" }`), when it answered one. */
  constructor(message: string, readonly status?: number, readonly reason?: string) {
    super(message);
    this.name = 'AgentClientError';
  }
}

/**
 * The query string of the API's flow pages (service/query.ts FlowQuery is the same query, with
 * `snapshot`, which the client puts in the path). Times are epoch seconds or RFC 3339.
 */
interface PageQuery {
  snapshot?: string;
  since?: string;
  until?: string;
  /** A CEL flow filter (the API compiles it and names the position of an error). */
  filter?: string;
  limit?: number;
  cursor?: string;
}

/** A page as the API sends it: `next` is null at the end. */
type WirePage = { flows: FlowRecord[]; next?: string | null; lost?: string; partial?: Page['partial'] };
/** A page as the client gives it: `next` absent at the end (service/query.ts FlowPage; `partial` from a hub). */
type Page = { flows: FlowRecord[]; next?: string; lost?: string; partial?: { missing: { agent: string; error: string }[] } };

/** Pages of an agent are followed up to this many flows (service/collect.ts); more is refused rather than silently cut. */
export const MAX_CLIENT_FLOWS = 1_000_000;

/**
 * A client of the agent's flow API (issue 6), used by `verify --api`, `diff --api`, `run --api`,
 * `watch --api` and the MCP server. One place knows the paths, the bearer token and how errors
 * come back (`{ "error": "…" }` with a 4xx or 5xx).
 */
export class AgentClient {
  readonly base: URL;

  constructor(url: string, private readonly token?: string) {
    try {
      this.base = new URL(url);
    } catch {
      throw new AgentClientError(`--api: "${url}" is not a URL (expected e.g. http://127.0.0.1:8899)`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new AgentClientError(`--api: "${url}" is not an http(s) URL`);
    }
  }

  /** A page of flows: of a snapshot (`/api/snapshots/:id/flows`) when the query names one, else `/api/flows`. */
  async page(q: PageQuery = {}): Promise<Page> {
    const path = q.snapshot !== undefined ? `/api/snapshots/${encodeURIComponent(q.snapshot)}/flows` : '/api/flows';
    const p = await this.json<WirePage>('GET', path, { query: pageQuery(q) });
    if (!p || !Array.isArray(p.flows)) throw new AgentClientError(`${path} answered without a "flows" array`);
    // The API sends `next: null` at the end; a page leaves it out.
    return { flows: p.flows, ...(p.next ? { next: p.next } : {}), ...(p.lost ? { lost: p.lost } : {}), ...(p.partial && Array.isArray(p.partial.missing) ? { partial: p.partial } : {}) };
  }

  flows(q: Omit<PageQuery, 'snapshot'> = {}): Promise<Page> {
    return this.page(q);
  }

  snapshotFlows(id: string, q: Omit<PageQuery, 'snapshot'> = {}): Promise<Page> {
    return this.page({ ...q, snapshot: id });
  }

  /** One flow by id; undefined when the agent does not have it. */
  async flow(id: string): Promise<FlowRecord | undefined> {
    try {
      return await this.json<FlowRecord>('GET', `/api/flows/${encodeURIComponent(id)}`);
    } catch (e) {
      if (e instanceof AgentClientError && e.status === 404) return undefined;
      throw e;
    }
  }

  /** The service map (`/api/stats`). */
  stats(q: { since?: string; until?: string } = {}): Promise<Record<string, unknown>> {
    return this.json('GET', '/api/stats', { query: { since: q.since, until: q.until } });
  }

  /**
   * Cluster events (`/api/events`) of a window or a snapshot's window, by namespace and pod; times
   * are epoch seconds. `note` says why the list may be empty (an agent without --kubernetes).
   */
  async clusterEvents(q: { since?: number; until?: number; namespace?: string; pod?: string; snapshot?: string } = {}): Promise<{ events: ClusterEvent[]; note?: string; partial?: { missing: { agent: string; error: string }[] } }> {
    const r = await this.json<{ events?: unknown; note?: unknown; partial?: unknown }>('GET', '/api/events', {
      query: { since: q.since, until: q.until, namespace: q.namespace, pod: q.pod, snapshot: q.snapshot },
    });
    if (!Array.isArray(r.events)) throw new AgentClientError(`${this.base.origin}/api/events answered without an "events" array`);
    return {
      events: r.events as ClusterEvent[],
      ...(typeof r.note === 'string' ? { note: r.note } : {}),
      ...(r.partial && typeof r.partial === 'object' ? { partial: r.partial as { missing: { agent: string; error: string }[] } } : {}),
    };
  }

  createSnapshot(req: { name?: string; filter?: string; since?: string; until?: string } = {}): Promise<{ id: string }> {
    return this.json('POST', '/api/snapshots', { body: req });
  }

  /** Closes a snapshot. The agent first drains its capture up to this moment, so nothing sent before is missed. */
  stopSnapshot(id: string): Promise<Snapshot> {
    return this.json('POST', `/api/snapshots/${encodeURIComponent(id)}/stop`, { body: {} });
  }

  getSnapshot(id: string): Promise<Snapshot> {
    return this.json('GET', `/api/snapshots/${encodeURIComponent(id)}`);
  }

  async listSnapshots(): Promise<Snapshot[]> {
    const r = await this.json<{ snapshots?: unknown }>('GET', '/api/snapshots');
    if (!Array.isArray(r.snapshots)) throw new AgentClientError(`${this.base.origin}/api/snapshots answered without a "snapshots" array`);
    return r.snapshots as Snapshot[];
  }

  /**
   * Downloads a snapshot's packets to `dest` as pcap. `loss` is the agent's statement of what the
   * packet ring no longer held ('none' when whole), sent as an HTTP trailer after the packets.
   */
  async pcap(id: string, dest: string): Promise<{ path: string; bytes: number; loss: string | undefined }> {
    const path = `/api/snapshots/${encodeURIComponent(id)}/pcap`;
    const res = await this.fetch('GET', path);
    if (!res.ok) throw await this.answerError(path, res);
    if (!res.body) throw new AgentClientError(`${this.base.origin}${path} answered without a body`);
    let bytes = 0;
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    body.on('data', (c: Buffer) => { bytes += c.length; });
    await pipeline(body, createWriteStream(dest));
    // fetch does not expose trailers; the snapshot's own record says whether the ring lost any of it.
    return { path: dest, bytes, loss: res.headers.get('x-tapwire-loss') ?? undefined };
  }

  /** A GET or POST of JSON; the answer parsed, or an AgentClientError naming the path and the reason. */
  async json<T>(method: 'GET' | 'POST' | 'DELETE', path: string, o: { query?: Record<string, string | number | undefined>; body?: unknown } = {}): Promise<T> {
    const res = await this.fetch(method, path, o);
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AgentClientError(`${this.base.origin}${path} answered ${res.status} with something that is not JSON: ${JSON.stringify(text.slice(0, 80))}`, res.status);
    }
    if (!res.ok) throw new AgentClientError(`${this.base.origin}${path} answered ${res.status}: ${answerReason(text)}`, res.status, answerReason(text));
    return body as T;
  }

  /** The raw response (for streams); network failures become AgentClientError. */
  async fetch(method: string, path: string, o: { query?: Record<string, string | number | undefined>; body?: unknown; signal?: AbortSignal; accept?: string } = {}): Promise<Response> {
    const u = new URL(path, this.base);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
    const headers: Record<string, string> = this.auth();
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.accept) headers.accept = o.accept;
    try {
      return await fetch(u, { method, headers, body: o.body === undefined ? undefined : JSON.stringify(o.body), signal: o.signal });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new AgentClientError(`cannot reach the agent at ${this.base.origin}: ${unreachableReason(e)}`);
    }
  }

  /**
   * One of the agent's event streams (`/api/flows/stream`, `/api/verdicts/stream`), with the token;
   * `lastEventId` resumes a stream that keeps history. SseError says why it could not open.
   */
  events(path: string, o: { signal?: AbortSignal; lastEventId?: string } = {}): Promise<AsyncGenerator<SseEvent>> {
    return openEvents(new URL(path, this.base), { headers: this.auth(), ...o });
  }

  private auth(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  private async answerError(path: string, res: Response): Promise<AgentClientError> {
    const reason = answerReason(await res.text());
    return new AgentClientError(`${this.base.origin}${path} answered ${res.status}: ${reason}`, res.status, reason);
  }
}

function pageQuery(q: PageQuery): Record<string, string | number | undefined> {
  return { since: q.since, until: q.until, filter: q.filter, limit: q.limit, cursor: q.cursor };
}

