import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { FlowRecord } from '../flows/record.js';
import { compileFilter, FilterError } from '../query/filter.js';
import { CursorError, type FlowStore, type Snapshot } from '../store/index.js';
import { isLoopbackRequest } from '../common/net.js';
import { readBody } from './body.js';
import { ApiError, bad, notFound } from './errors.js';
import type { FlowFeed } from './feed.js';
import { limitParam, timeParam } from './params.js';
import { ServiceMap } from '../verify/servicemap.js';
import { streamFlows } from './sse.js';
import { streamVerdicts, verdictsBody } from './verdicts.js';
import { addRun, runsBody, type RunStore } from './runs.js';
import type { Watcher } from '../watch/watcher.js';

export interface ApiOptions {
  store: FlowStore;
  feed: FlowFeed;
  registry: Registry;
  /** Bearer token. Required when the agent listens beyond loopback (the agent enforces that). */
  token?: string;
  /**
   * Waits until every packet captured before the call is decoded and stored (the live agent's
   * Recorder.drain). Stopping a snapshot calls it first, so a snapshot stopped right after a test
   * command exits holds all of that command's traffic: no client needs to sleep first.
   */
  drain?: () => Promise<{ proven: boolean }>;
  /**
   * The agent listens on loopback only: requests whose Host or Origin is not loopback are refused,
   * so that a web page cannot reach the API through DNS rebinding or a cross-site POST (and, say,
   * write a run record whose command an assistant would later run).
   */
  loopbackOnly?: boolean;
  /** Standing specs judged over live flows (`--spec`): served at /api/verdicts. */
  watcher?: Watcher;
  /** Kept test runs (`tapwire run`, run_and_verify): served at /api/runs. */
  runs?: RunStore;
}

/** Longest request target accepted (filters travel in the query string). */
const MAX_URL = 8 * 1024;
/** Largest POST body (snapshot requests are small JSON). */
const MAX_BODY = 64 * 1024;
/** Flows a service-map request reads at most: a bigger window is answered in part, and says so. */
const MAX_STATS_FLOWS = 200_000;
/** The service map's default window, seconds. */
const DEFAULT_STATS_WINDOW = 15 * 60;

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, m: RegExpExecArray) => Promise<void> | void;

/**
 * The agent's HTTP API (issue 6): flows, a live SSE feed, snapshots with pcap export, the service
 * map, Prometheus metrics and a health check. Every refused request gets a 4xx with a JSON
 * `{ "error": "…" }` naming what was wrong.
 */
export function createApi(o: ApiOptions): Server {
  const routes: [string, RegExp, Handler][] = [
    ['GET', /^\/healthz$/, (_q, res) => json(res, 200, { status: 'ok' })],
    ['GET', /^\/metrics$/, async (_q, res) => {
      res.writeHead(200, { 'content-type': o.registry.contentType });
      res.end(await o.registry.metrics());
    }],
    ['GET', /^\/api\/flows$/, async (_q, res, url) => json(res, 200, await page(o.store, url, {}))],
    ['GET', /^\/api\/flows\/stream$/, (req, res, url) => streamFlows(req, res, o.feed, filterParam(url))],
    ['GET', /^\/api\/verdicts$/, (_q, res, url) => json(res, 200, verdictsBody(o.watcher, url))],
    ['GET', /^\/api\/verdicts\/stream$/, (req, res) => streamVerdicts(req, res, o.watcher)],
    ['GET', /^\/api\/flows\/([^/]+)$/, async (_q, res, _u, m) => {
      const r = await o.store.get(decodeURIComponent(m[1]!));
      if (!r) throw notFound(`no flow "${decodeURIComponent(m[1]!)}"`);
      json(res, 200, r);
    }],
    ['POST', /^\/api\/snapshots$/, async (req, res) => {
      const body = await readJson(req);
      const since = timeParam('since', str(body, 'since')), until = timeParam('until', str(body, 'until'));
      const filter = str(body, 'filter');
      if (filter !== undefined) compile(filter);
      if (since !== undefined && until !== undefined && until < since) throw bad('until is before since');
      json(res, 201, o.store.snapshots.create({ name: str(body, 'name'), since, until, filter }));
    }],
    ['GET', /^\/api\/snapshots$/, (_q, res) => json(res, 200, { snapshots: o.store.snapshots.list() })],
    ['POST', /^\/api\/snapshots\/([^/]+)\/stop$/, async (_q, res, _u, m) => {
      const id = snapshot(o.store, m[1]!).id;
      const d = await o.drain?.();
      // Whether the drain was proven by a marker (see live/barrier.ts), so a client can tell.
      json(res, 200, { ...o.store.snapshots.stop(id), ...(d ? { drained: d.proven ? 'proven' : 'unproven' } : {}) });
    }],
    ['GET', /^\/api\/snapshots\/([^/]+)\/flows$/, async (_q, res, url, m) => {
      const s = snapshot(o.store, m[1]!);
      json(res, 200, await page(o.store, url, { since: s.since, until: s.until, filter: s.filter }));
    }],
    ['GET', /^\/api\/snapshots\/([^/]+)$/, (_q, res, _u, m) => json(res, 200, snapshot(o.store, m[1]!))],
    ['GET', /^\/api\/snapshots\/([^/]+)\/pcap$/, async (_q, res, _u, m) => {
      const s = snapshot(o.store, m[1]!);
      res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap', 'content-disposition': `attachment; filename="${s.id}.pcap"`, trailer: 'x-tapwire-loss' });
      const r = await o.store.exportPcap(s.since, s.until ?? Date.now() / 1000, res);
      // The loss is only known at the end: an HTTP trailer carries it (curl --raw shows it).
      res.addTrailers({ 'x-tapwire-loss': r.lost ?? 'none' });
      res.end();
    }],
    ['GET', /^\/api\/stats$/, async (_q, res, url) => json(res, 200, await serviceMap(o.store, url))],
    ['POST', /^\/api\/runs$/, async (req, res) => {
      const r = await addRun(req, o.runs);
      json(res, r.status, r.body);
    }],
    ['GET', /^\/api\/runs$/, (_q, res, url) => json(res, 200, runsBody(o.runs, url))],
  ];

  return createServer((req, res) => {
    void handle(req, res).catch((e) => fail(res, e));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.url ?? '').length > MAX_URL) throw new ApiError(414, `request target longer than ${MAX_URL} bytes`);
    if (o.loopbackOnly && !isLoopbackRequest(req.headers)) {
      throw new ApiError(403, 'Host or Origin is not loopback: refused (this API listens on loopback; DNS rebinding and cross-site requests are not served)');
    }
    if (o.token !== undefined && !authorized(req, o.token)) {
      res.setHeader('www-authenticate', 'Bearer');
      throw new ApiError(401, 'missing or wrong bearer token (Authorization: Bearer <token>; see --token / TAPWIRE_TOKEN)');
    }
    const url = new URL(req.url ?? '/', 'http://agent');
    const allowed: string[] = [];
    for (const [method, re, h] of routes) {
      const m = re.exec(url.pathname);
      if (!m) continue;
      if (method === req.method) return h(req, res, url, m);
      allowed.push(method);
    }
    if (allowed.length > 0) {
      res.setHeader('allow', allowed.join(', '));
      throw new ApiError(405, `${req.method} is not allowed on ${url.pathname} (allowed: ${allowed.join(', ')})`);
    }
    throw notFound(`no such endpoint: ${url.pathname}`);
  }
}

function authorized(req: IncomingMessage, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!), b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function compile(expr: string): (r: FlowRecord) => boolean {
  // compileFilter enforces the length limit itself.
  try {
    return compileFilter(expr);
  } catch (e) {
    if (e instanceof FilterError) throw bad(e.message);
    throw e;
  }
}

function filterParam(url: URL): ((r: FlowRecord) => boolean) | undefined {
  const f = url.searchParams.get('filter');
  return f ? compile(f) : undefined;
}

/** One page of flows, ordered by start, with the snapshot's window and filter applied first. */
async function page(store: FlowStore, url: URL, within: { since?: number; until?: number; filter?: string }) {
  const since = max(within.since, timeParam('since', url.searchParams.get('since')));
  const until = min(within.until, timeParam('until', url.searchParams.get('until')));
  const fs = [within.filter ? compile(within.filter) : undefined, filterParam(url)].filter((f): f is (r: FlowRecord) => boolean => f !== undefined);
  const filter = fs.length === 0 ? undefined : fs.length === 1 ? fs[0] : (r: FlowRecord) => fs.every((f) => f(r));
  const cursor = url.searchParams.get('cursor') ?? undefined;
  try {
    return await store.query({ filter, since, until, limit: limitParam(url.searchParams.get('limit')), cursor });
  } catch (e) {
    if (e instanceof CursorError) throw bad(`cursor: ${e.message}`);
    throw e;
  }
}

async function serviceMap(store: FlowStore, url: URL) {
  const until = timeParam('until', url.searchParams.get('until')) ?? Date.now() / 1000;
  const since = timeParam('since', url.searchParams.get('since')) ?? until - DEFAULT_STATS_WINDOW;
  const map = new ServiceMap();
  let read = 0;
  let cursor: string | undefined;
  do {
    const p = await store.query({ since, until, limit: 1000, cursor });
    for (const r of p.flows) map.add(r);
    read += p.flows.length;
    cursor = p.next ?? undefined;
  } while (cursor && read < MAX_STATS_FLOWS);
  return { since, until, flows: read, ...(cursor ? { truncated: `stopped after ${read} flows; narrow since/until` } : {}), ...map.toJSON() };
}

function snapshot(store: FlowStore, id: string): Snapshot {
  const s = store.snapshots.get(decodeURIComponent(id));
  if (!s) throw notFound(`no snapshot "${decodeURIComponent(id)}"`);
  return s;
}

const max = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.max(a, b));
const min = (a?: number, b?: number) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

function str(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && (name === 'since' || name === 'until')) return String(v);
  if (typeof v !== 'string') throw bad(`${name}: expected a string, got ${typeof v}`);
  return v;
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const v = await readBody(req, MAX_BODY);
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('body: expected a JSON object');
  const known = ['name', 'since', 'until', 'filter'];
  const unknown = Object.keys(v).filter((k) => !known.includes(k));
  if (unknown.length) throw bad(`body: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')})`);
  return v as Record<string, unknown>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy(e instanceof Error ? e : undefined);
    return;
  }
  if (e instanceof ApiError) return json(res, e.status, { error: e.message });
  process.stderr.write(`tapwire agent: API error: ${(e as Error).stack ?? e}\n`);
  json(res, 500, { error: 'internal error (logged by the agent)' });
}
