import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, McpError, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import type { McpContext } from './context.js';
import { knownSnapshot } from './source.js';

/**
 * Snapshots exported as pcap files into `<data dir>/exports`, and `pcap://{snapshot}`, the
 * resource export_pcap links to, so that a client reads the packets through MCP itself.
 */

export const PCAP_MIME = 'application/vnd.tcpdump.pcap';
/** A read larger than this gives the path instead: base64 in one JSON-RPC message grows by a third. */
export const MAX_PCAP_READ = 8 << 20;
/** Exports kept in the exports directory; older ones are removed as new ones are written. */
export const KEEP_EXPORTS = 20;

export function pcapUri(snapshot: string): string {
  return `pcap://${encodeURIComponent(snapshot)}`;
}

export interface Export {
  path: string;
  bytes: number;
  loss?: string;
}

/** Writes the snapshot's packets to a new file in the exports directory, then prunes the oldest. */
export async function exportSnapshot(ctx: McpContext, snapshot: string): Promise<Export> {
  const backend = await ctx.backend();
  await knownSnapshot(backend, snapshot, 'snapshot');
  const dir = await exportDir(ctx.dataDir);
  const r = await backend.exportPcap(snapshot, join(dir, `${snapshot}-${Date.now()}.pcap`));
  await prune(dir, r.path, ctx.log);
  return r;
}

/**
 * The read of `pcap://{snapshot}`: the newest export of the snapshot (exported now when there is
 * none, or it was pruned), as a base64 blob; past MAX_PCAP_READ, a JSON text giving its path.
 */
export async function readPcap(ctx: McpContext, uri: string, snapshot: string): Promise<ReadResourceResult> {
  const found = await newestExport(await exportDir(ctx.dataDir), snapshot);
  let path: string, bytes: number;
  if (found) ({ path, bytes } = found);
  else {
    try {
      ({ path, bytes } = await exportSnapshot(ctx, snapshot));
    } catch (e) {
      throw new McpError(ErrorCode.InvalidParams, `pcap of snapshot "${snapshot}": ${(e as Error).message}`);
    }
  }
  if (bytes > MAX_PCAP_READ) {
    const note = `the pcap is ${bytes} bytes, more than the ${MAX_PCAP_READ} a read returns: read the file at path (or narrow the snapshot)`;
    return { contents: [{ uri, mimeType: 'application/json', text: JSON.stringify({ path, bytes, note }) }] };
  }
  return { contents: [{ uri, mimeType: PCAP_MIME, blob: (await readFile(path)).toString('base64') }] };
}

/** `<data dir>/exports`, else the system's temporary directory when the data dir cannot be written. */
async function exportDir(dataDir: string): Promise<string> {
  const dir = join(dataDir, 'exports');
  try {
    await mkdir(dir, { recursive: true });
    return dir;
  } catch {
    return tmpdir();
  }
}

/** Export files of this server: `<snapshot>-<ms>.pcap`; newest first. */
async function exports(dir: string): Promise<{ name: string; path: string; ms: number }[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.map((name) => ({ name, m: /^(.+)-(\d{13})\.pcap$/.exec(name) }))
    .filter((e) => e.m !== null)
    .map((e) => ({ name: e.m![1]!, path: join(dir, e.name), ms: Number(e.m![2]) }))
    .sort((a, b) => b.ms - a.ms);
}

async function newestExport(dir: string, snapshot: string): Promise<{ path: string; bytes: number } | undefined> {
  for (const e of await exports(dir)) {
    if (e.name !== snapshot) continue;
    const s = await stat(e.path).catch(() => undefined);
    if (s) return { path: e.path, bytes: s.size };
  }
  return undefined;
}

/** Keeps the newest KEEP_EXPORTS exports (and always `just`, the one written now). */
async function prune(dir: string, just: string, log: (line: string) => void): Promise<void> {
  const old = (await exports(dir)).filter((e) => e.path !== just).slice(KEEP_EXPORTS - 1);
  for (const e of old) await rm(e.path, { force: true }).catch((err: Error) => log(`tapwire mcp: could not remove old export ${e.path}: ${err.message}`));
}
