import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { Snapshot } from '../store/index.js';
import { isLoopbackRequest } from '../common/index.js';
import type { FlowPage, FlowSource, SnapshotWriter } from '../service/index.js';
import { ApiError, bad, notFound } from './errors.js';
import { apiError, flowQueryParams, parsed, readBody, timeParam } from './params.js';
import { streamFlows } from './sse.js';
import { streamVerdicts, verdictsBody } from './verdicts.js';
import { addRun, runsBody, type RunStore } from './runs.js';
import { workloadsBody } from './workloads.js';
import { coverageBody } from './coverage.js';
import { usageBody } from './usage.js';
import type { UsageSource } from '../enrich/index.js';
import { eventsBody } from './events.js';
import type { Watcher } from '../watch/index.js';

export interface ApiOptions {
  /**
   * Where the flows come from (service/source.ts): the agent's own store (a StoreSource, which
   * also drains the capture before a snapshot stops), or anything else that answers the same
   * queries (the hub).
   */
  source: FlowSource;
  registry: Registry;
  /** Bearer token. Required when the agent listens beyond loopback (the agent enforces that). */
  token?: string;
  /**
   * The agent listens on loopback only: requests whose Host or Origin is not loopback are refused,
   * so that a web page cannot reach the API through DNS rebinding or a cross-site POST (and, say,
   * write a run record whose command an assistant would later run).
   */
  loopbackOnly?: boolean;
  /** Standing specs judged over live flows (`--spec`): served at /api/verdicts. */
  watcher?: Watcher;
  /** Whether the agent's TLS uprobes are attached now (--tls): coverage then blames a connection's ends, not the agent. */
  tlsProbes?: () => boolean;
  /** The node an agent captures (--kubernetes): in /healthz, so a hub can say which node a missing agent held. */
  node?: string;
  /** Kept test runs (`tapwire run`, run_and_verify): served at /api/runs. */
  runs?: RunStore;
  /** Pods' resource use (`--kubernetes`: a UsageSampler): served at /api/usage. */
  usage?: UsageSource;
}

/** Longest request target accepted (filters travel in the query string). */
const MAX_URL = 8 * 1024;
/** Largest POST body (snapshot requests are small JSON). */
const MAX_BODY = 64 * 1024;

type Handler = (req: IncomingMessage, res: ServerResponse, url: URL, m: RegExpExecArray) => Promise<void> | void;

/**
 * The agent's HTTP API (issue 6): flows, a live SSE feed, snapshots with pcap export, the service
 * map, Prometheus metrics and a health check. Every refused request gets a 4xx with a JSON
 * `{ "error": "…" }` naming what was wrong.
 */
export function createApi(o: ApiOptions): Server {
  const source = o.source;
  const writer = (): SnapshotWriter => {
    if (!source.snapshotWriter) throw notFound(`${source.describe()} keeps no snapshots`);
    return source.snapshotWriter;
  };
  const snapshot = async (id: string): Promise<Snapshot> => {
    const s = await source.snapshot(decodeURIComponent(id));
    if (!s) throw notFound(`no snapshot "${decodeURIComponent(id)}"`);
    return s;
  };
  const routes: [string, RegExp, Handler][] = [
    ['GET', /^\/healthz$/, (_q, res) => json(res, 200, { status: 'ok', ...(o.node !== undefined ? { node: o.node } : {}) })],
    ['GET', /^\/metrics$/, async (_q, res) => {
      res.writeHead(200, { 'content-type': o.registry.contentType });
      res.end(await o.registry.metrics());
    }],
    ['GET', /^\/api\/flows$/, async (_q, res, url) => json(res, 200, wire(await source.query(flowQueryParams(url))))],
    ['GET', /^\/api\/flows\/stream$/, (req, res, url) => streamFlows(req, res, source, url.searchParams.get('filter') || undefined)],
    ['GET', /^\/api\/verdicts$/, (_q, res, url) => json(res, 200, verdictsBody(o.watcher, url))],
    ['GET', /^\/api\/verdicts\/stream$/, (req, res) => streamVerdicts(req, res, o.watcher)],
    ['GET', /^\/api\/flows\/([^/]+)$/, async (_q, res, _u, m) => {
      const r = await source.flow(decodeURIComponent(m[1]!));
      if (!r) throw notFound(`no flow "${decodeURIComponent(m[1]!)}"`);
      json(res, 200, r);
    }],
    ['POST', /^\/api\/snapshots$/, async (req, res) => {
      const given = await readBody(req, MAX_BODY);
      const body = parsed(SnapshotBody, given === undefined ? {} : given, 'body');
      const since = timeParam('since', text(body.since)), until = timeParam('until', text(body.until));
      if (since !== undefined && until !== undefined && until < since) throw bad('until is before since');
      json(res, 201, await writer().create({ name: body.name ?? undefined, since, until, filter: body.filter ?? undefined }));
    }],
    ['GET', /^\/api\/snapshots$/, async (_q, res) => json(res, 200, { snapshots: await source.snapshots() })],
    ['POST', /^\/api\/snapshots\/([^/]+)\/stop$/, async (_q, res, _u, m) => {
      const id = (await snapshot(m[1]!)).id;
      const s = await writer().stop(id);
      if (!s) throw notFound(`no snapshot "${id}"`);
      json(res, 200, s);
    }],
    ['GET', /^\/api\/snapshots\/([^/]+)\/flows$/, async (_q, res, url, m) => {
      const s = await snapshot(m[1]!);
      json(res, 200, wire(await source.query(flowQueryParams(url, s.id))));
    }],
    ['GET', /^\/api\/snapshots\/([^/]+)$/, async (_q, res, _u, m) => json(res, 200, await snapshot(m[1]!))],
    ['GET', /^\/api\/snapshots\/([^/]+)\/pcap$/, async (_q, res, _u, m) => {
      const s = await snapshot(m[1]!);
      const w = writer();
      res.writeHead(200, { 'content-type': 'application/vnd.tcpdump.pcap', 'content-disposition': `attachment; filename="${s.id}.pcap"`, trailer: 'x-tapwire-loss' });
      const r = await w.pcap(s.id, res);
      // The loss is only known at the end: an HTTP trailer carries it (curl --raw shows it).
      res.addTrailers({ 'x-tapwire-loss': r.lost ?? 'none' });
      res.end();
    }],
    ['GET', /^\/api\/stats$/, async (_q, res, url) => {
      const p = url.searchParams;
      // A window given is checked here, so a bad one is refused by name before anything is read.
      const since = timeParam('since', p.get('since')), until = timeParam('until', p.get('until'));
      json(res, 200, await source.serviceMap({ since: since === undefined ? undefined : String(since), until: until === undefined ? undefined : String(until) }));
    }],
    ['POST', /^\/api\/runs$/, async (req, res) => {
      const r = await addRun(req, o.runs);
      json(res, r.status, r.body);
    }],
    ['GET', /^\/api\/runs$/, (_q, res, url) => json(res, 200, runsBody(o.runs, url))],
    ['GET', /^\/api\/workloads$/, async (_q, res, url) => json(res, 200, await workloadsBody(source, url))],
    ['GET', /^\/api\/coverage$/, async (_q, res, url) => json(res, 200, await coverageBody(source, url, o.tlsProbes))],
    ['GET', /^\/api\/usage$/, async (_q, res, url) => json(res, 200, await usageBody(o.usage, url))],
    ['GET', /^\/api\/events$/, async (_q, res, url) => json(res, 200, await eventsBody(source, url))],
  ];

  return createServer((req, res) => {
    void handle(req, res).catch((e) => fail(res, apiError(e)));
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

/** `POST /api/snapshots`: every field optional; since and until as RFC 3339 or epoch seconds. */
const SnapshotBody = z.strictObject({
  name: z.string().nullish(),
  since: z.union([z.string(), z.number()], { error: (i) => `expected a string, got ${typeof i.input}` }).nullish(),
  until: z.union([z.string(), z.number()], { error: (i) => `expected a string, got ${typeof i.input}` }).nullish(),
  filter: z.string().nullish(),
});

const text = (v: string | number | null | undefined): string | undefined => (v === null || v === undefined ? undefined : String(v));

/**
 * A page as the API has always sent it: `next` is null on the last page; `lost` only when flows
 * could not be read; `partial` only when the hub answers without some agents.
 */
function wire(p: FlowPage) {
  return { flows: p.flows, next: p.next ?? null, ...(p.lost ? { lost: p.lost } : {}), ...(p.partial ? { partial: p.partial } : {}) };
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
