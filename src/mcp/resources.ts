import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, SubscribeRequestSchema, UnsubscribeRequestSchema, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { AgentClientError } from '../client/index.js';
import { DEFAULT_BODY_BYTES } from './bodies.js';
import { fitsWithin, shrinkFindings, tokens, truncationNote } from './bound.js';
import type { McpContext } from './context.js';
import { errorText } from './errors.js';
import { boundFlow, type BoundedFlow } from './flow-bound.js';
import { flowPage } from './pages.js';
import { MAX_PCAP_READ, PCAP_MIME, readPcap } from './pcap.js';
import type { VerdictNotice } from './verdicts.js';

export const VERDICTS_URI = 'verdicts://current';

/**
 * `flow://{id}`, `snapshot://{id}` and `pcap://{snapshot}` (from the backend), and `verdicts://current`, which a client
 * may subscribe to: this session is then sent `notifications/resources/updated` on every verdict
 * change of the agent's standing specs, and a log message with the change's one line.
 * Returns what to call when the session ends.
 */
export function registerResources(server: McpServer, ctx: McpContext): () => void {
  server.registerResource('flow', new ResourceTemplate('flow://{id}', { list: undefined }), {
    title: 'A flow', description: 'One flow record from the backend, bodies cut to 4096 bytes', mimeType: 'application/json',
  }, async (uri, vars) => {
    const id = String(vars.id);
    const backend = await ctx.backend();
    const r = await guard(() => backend.flow(decodeURIComponent(id)));
    if (!r) throw new McpError(ErrorCode.InvalidParams, `no flow "${id}" on the ${backend.kind} backend`);
    // Bounded as get_flow is: a bulk INSERT's query text alone can be far past the bound.
    const body = (v: BoundedFlow) => ({ flow: v.flow, payloads: v.payloads, ...(v.truncated ? { truncated: v.truncated } : {}) });
    const v = boundFlow(r, DEFAULT_BODY_BYTES, ctx.maxTokens, (w) => fitsWithin(ctx.maxTokens, () => ({ structured: body(w), text: '' }))());
    return json(uri.href, body(v));
  });

  server.registerResource('snapshot', new ResourceTemplate('snapshot://{id}', { list: undefined }), {
    title: 'A snapshot', description: 'A snapshot\'s metadata and its first page of flow rows', mimeType: 'application/json',
  }, async (uri, vars) => {
    const id = decodeURIComponent(String(vars.id));
    const backend = await ctx.backend();
    const snapshot = await guard(() => backend.getSnapshot(id));
    if (!snapshot) throw new McpError(ErrorCode.InvalidParams, `no snapshot "${id}" on the ${backend.kind} backend`);
    const page = await guard(() => flowPage(ctx, { snapshot: id }, tokens(snapshot) + 200));
    return json(uri.href, { snapshot, ...page });
  });

  server.registerResource('pcap', new ResourceTemplate('pcap://{snapshot}', { list: undefined }), {
    title: 'A snapshot\'s packets', description: `The snapshot's newest pcap export (export_pcap), base64; past ${MAX_PCAP_READ >> 20} MiB its path instead`, mimeType: PCAP_MIME,
  }, async (uri, vars) => readPcap(ctx, uri.href, decodeURIComponent(String(vars.snapshot))));

  server.registerResource('verdicts', VERDICTS_URI, {
    title: 'Standing-spec verdicts',
    description: 'Where each standing spec of the agent (tapwire agent --spec) stands, and the latest changes. Subscribe to hear of every change.',
    mimeType: 'application/json',
  }, async (uri) => json(uri.href, await verdicts(ctx)));

  // Flows and snapshots do not change once stopped: only verdicts://current is ever updated.
  let following: (() => void) | undefined;
  const tell = (c: VerdictNotice) => {
    void server.server.sendResourceUpdated({ uri: VERDICTS_URI }).catch(() => {});
    // The update says only "read it again"; the log line says what changed, so an agent hears it.
    void server.sendLoggingMessage({ level: c.verdict === 'fail' ? 'warning' : 'info', logger: 'tapwire.verdicts', data: c.summary }).catch(() => {});
  };
  server.server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    const uri = req.params.uri;
    if (!/^(verdicts:\/\/current|(flow|snapshot|pcap):\/\/.+)$/.test(uri)) throw new McpError(ErrorCode.InvalidParams, `uri: "${uri}" is not a resource of this server`);
    if (uri === VERDICTS_URI && !following) following = ctx.verdicts?.subscribe(tell);
    return {};
  });
  server.server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    if (req.params.uri === VERDICTS_URI) {
      following?.();
      following = undefined;
    }
    return {};
  });
  return () => following?.();
}

/** The verdicts, bounded like a tool result; without an agent, or one without --spec, says so. */
async function verdicts(ctx: McpContext): Promise<unknown> {
  if (!ctx.verdicts) {
    return { available: false, reason: 'standing-spec verdicts need an agent started with --spec: run `tapwire agent --spec FILE` and start this server with --api URL' };
  }
  let v;
  try {
    v = await ctx.verdicts.current();
  } catch (e) {
    if (e instanceof AgentClientError && e.status === 404) return { available: false, reason: `the agent at ${ctx.agent!.base.origin} has no standing specs: start it with --spec FILE` };
    if (e instanceof AgentClientError) return { available: false, reason: e.message };
    throw e;
  }
  // A copy: the follower's state serves every session, and bounding cuts in place.
  const mine = structuredClone(v);
  const out: Record<string, unknown> = { available: true, ...mine };
  const cut = shrinkFindings(mine.specs.flatMap((s) => s.findings), fitsWithin(ctx.maxTokens, () => ({ structured: out, text: '' })));
  if (cut) out.truncated = truncationNote(ctx.maxTokens, cut, 'verify with since/until over the same window shows every finding');
  return out;
}

/** A tool-style error (a bad filter, an agent that refuses) as a resource error the client can read. */
async function guard<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const text = errorText(e);
    if (text !== undefined) throw new McpError(ErrorCode.InvalidParams, text);
    throw e;
  }
}

/** Compact JSON: what the bound measured is what is sent. */
function json(uri: string, body: unknown): ReadResourceResult {
  return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify(body) }] };
}
