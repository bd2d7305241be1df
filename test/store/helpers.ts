/**
 * Shared by the store tests: real flow records and packets from the recorded captures, temp
 * store directories, paging through a whole query, and the child-process build for the crash test.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { afterEach } from 'vitest';
import { readCapture } from '../../src/capture/reader.js';
import type { FlowRecord } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import type { FlowStore } from '../../src/store/index.js';

export const CAPTURES = ['pcaps/demo/demo.pcap', 'pcaps/postgres/pgbench-extended.pcap', 'pcaps/http1/mix.pcap'];

/** Records of the three captures in the order the pipeline emitted them (completion order). */
export async function realFlows(): Promise<FlowRecord[]> {
  const out: FlowRecord[] = [];
  for (const f of CAPTURES) out.push(...(await analyzeFile(f)).records!);
  return out;
}

export interface RawPacket { time: number; linkType: number; data: Buffer; wireLen: number }

export async function realPackets(file: string): Promise<RawPacket[]> {
  const out: RawPacket[] = [];
  await readCapture(file, (p) => out.push({ time: p.time, linkType: p.linkType, data: Buffer.from(p.data), wireLen: p.wireLen }));
  return out;
}

/** The flows as a query must return them: by (start, id). */
export function byKey(flows: FlowRecord[]): FlowRecord[] {
  return [...flows].sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** A copy moved in time by `dt` seconds, with a distinct id (tag): more flows from the same capture. */
export function shifted(r: FlowRecord, dt: number, tag: string): FlowRecord {
  return { ...r, id: `${r.id}~${tag}`, start: r.start + dt, end: r.end + dt };
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-store-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** For a test file: makes temp dirs that are removed after each test. */
export function tempDirs(): () => string {
  let made: (() => void)[] = [];
  afterEach(() => {
    for (const c of made) c();
    made = [];
  });
  return () => {
    const t = tempDir();
    made.push(t.cleanup);
    return t.dir;
  };
}

/**
 * Leaves a store as a crash would, for a test that reopens it in the same process: the files as
 * they are, and no live writer lock (a crashed writer's is stale and taken over; this process is
 * alive, so its lock is removed instead). The store object must not be used after.
 */
export function crashed(dir: string): void {
  for (const f of readdirSync(dir)) if (/^writer-\d+\.lock$/.test(f)) unlinkSync(join(dir, f));
}

/** Follows `next` to the end; fails on a page that repeats a flow. */
export async function pageAll(store: FlowStore, q: Omit<Parameters<FlowStore['query']>[0], 'cursor'>): Promise<{ flows: FlowRecord[]; pages: number }> {
  const flows: FlowRecord[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const p = await store.query({ ...q, cursor });
    flows.push(...p.flows);
    pages++;
    cursor = p.next ?? undefined;
  } while (cursor);
  return { flows, pages };
}

/**
 * Node 20 cannot run TypeScript: the crash test's child script and the sources it imports are
 * transpiled one by one (no type check; tsc does that for src) into test/store/<into>/, inside the
 * project so `msgpackr` resolves from its node_modules. Returns the entry's .js path.
 */
export function transpileForChild(entry: string, into = '.tmp'): string {
  const root = process.cwd();
  // Test files run in parallel and each removes its own folder after: one folder each.
  const outDir = join(root, 'test', 'store', into, 'build');
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, 'utf8');
    const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    const dest = join(outDir, relative(root, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, js);
    for (const m of src.matchAll(/from '(\.{1,2}\/[^']+)\.js'/g)) visit(resolve(dirname(file), `${m[1]}.ts`));
  };
  visit(resolve(entry));
  return join(outDir, relative(root, resolve(entry))).replace(/\.ts$/, '.js');
}
