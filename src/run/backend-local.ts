import { once } from 'node:events';
import { createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redactor, type FlowRecord } from '../flows/index.js';
import { DEFAULT_BODY_LIMIT, loadRedactKey, type DecodeCoverage } from '../pipeline/index.js';
import { Recorder } from '../live/index.js';
import type { FlowPredicate } from '../query/index.js';
import { FlowStore, type RunLog, type Snapshot } from '../store/index.js';
import type { Backend, FlowPage, FlowQuery, RunRecord, StoppedSnapshot } from './backend.js';
import {
  applyRetention, claim, defaultDataDir, KEEP_BYTES, lastWrite, listSnapshots, liveOwner, newSnapshotId, readSnapshot, release, snapshotsDir,
} from './local-snapshots.js';
import { CommandInputError } from './command.js';
import { timeOf } from '../service/index.js';
import { openRunLog } from './record.js';

export interface LocalBackendOptions {
  /** Default: `$TAPWIRE_DATA_DIR`, else `${XDG_DATA_HOME:-~/.local/share}/tapwire`. */
  dataDir?: string;
  /** Interface captured when startSnapshot names none. Default lo. */
  iface?: string;
  bodyLimit?: number;
  /** Default: loadRedactKey() (TAPWIRE_REDACT_KEY or the per-user key file). */
  redactKey?: Buffer;
  bufferBytes?: number;
  /** Things worth saying that are not errors (torn lines in the run log). Default: stderr. */
  onWarning?: (message: string) => void;
}

/**
 * The capture ring for a local run. 128 MiB opened in about 70 ms here, 256 MiB (the agent's
 * default) in about a second — a second added to every `tapwire run`. 128 MiB holds 1 024 packets
 * (see DEFAULT_LIVE_BUFFER_BYTES): bursts of a test suite, while this process sits idle waiting.
 */
const RUN_BUFFER_BYTES = 128 << 20;
/** In-memory flows per snapshot store; the rest are read from its segments. */
const MEMORY_FLOWS = 20_000;
/** Local snapshot stores are bounded by count and bytes (local-snapshots.ts), not by age. */
const NO_AGE_LIMIT = 10 * 365 * 86400;
const PAGE = 1000;
export const MAX_SNAPSHOT_FLOWS = 1_000_000;
/** Decode coverage kept for the snapshots most recently stopped here (a run reads it right after the stop). */
const KEPT_COVERAGE = 16;

interface Live {
  dir: string;
  store: FlowStore;
  recorder: Recorder;
  /** The snapshot's id inside its store (the store made it; the backend's id is the directory). */
  inner: string;
  flows: number;
  /** Set when stopping: the drain instant, which the snapshot's window ends at. */
  until?: number;
  syncing: boolean;
}

/**
 * No agent: this process captures (libpcap, as the agent does) into a FlowStore per snapshot
 * under `<dataDir>/snapshots/<id>/`, and keeps runs in `<dataDir>/runs.jsonl`. Snapshots outlive
 * the process: any later LocalBackend on the same data directory lists, reads and exports them.
 */
export class LocalBackend implements Backend {
  readonly kind = 'local' as const;
  readonly dataDir: string;
  private readonly live = new Map<string, Live>();
  /** Stops in flight, by snapshot id (see stopSnapshot). */
  private readonly stopping = new Map<string, Promise<StoppedSnapshot>>();
  /** What the captures of recently stopped snapshots saw but did not decode, by snapshot id. */
  private readonly coverage = new Map<string, DecodeCoverage>();
  private runLog?: RunLog<RunRecord>;
  private redactor?: Redactor;

  constructor(private readonly o: LocalBackendOptions = {}) {
    this.dataDir = o.dataDir ?? defaultDataDir();
  }

  describe(): string {
    return `local capture on ${this.o.iface ?? 'lo'} (data in ${this.dataDir})`;
  }

  async startSnapshot(s: { name?: string; filter?: string; iface?: string; bpf?: string }): Promise<{ id: string }> {
    if (s.filter !== undefined) (await celFilters()).compileFilter(s.filter);
    try {
      mkdirSync(snapshotsDir(this.dataDir), { recursive: true });
    } catch (e) {
      // Bad input, not a bug: the data dir is the user's choice (--data-dir, TAPWIRE_DATA_DIR).
      throw new CommandInputError(`data dir: ${this.dataDir} cannot hold snapshots: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (choose another with --data-dir or TAPWIRE_DATA_DIR)`);
    }
    applyRetention(this.dataDir);
    const id = newSnapshotId();
    const dir = join(snapshotsDir(this.dataDir), id);
    mkdirSync(dir);
    claim(dir);
    const store = await FlowStore.open({
      dir, maxBytes: KEEP_BYTES, maxAgeSec: NO_AGE_LIMIT, memoryFlows: MEMORY_FLOWS,
      now: () => live?.until ?? live?.recorder.now() ?? Date.now() / 1000,
    }).catch((e: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw e;
    });
    let recorder: Recorder;
    try {
      recorder = Recorder.start({
        interfaces: [s.iface ?? this.o.iface ?? 'lo'], filter: s.bpf, bufferBytes: this.o.bufferBytes ?? RUN_BUFFER_BYTES,
        bodyLimit: this.o.bodyLimit ?? DEFAULT_BODY_LIMIT, redactor: this.redactorOf(),
        onRecord: (r) => {
          store.add(r);
          if (live) live.flows++;
        },
        onPacket: (p) => store.addPacket(p.time, p.linkType, p.data, p.wireLen),
        onTick: () => live && this.sync(live),
      });
    } catch (e) {
      // Nothing was captured: leave no empty snapshot behind (CaptureOpenError names the interface and why).
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    const live: Live = { dir, store, recorder, inner: '', flows: 0, syncing: false };
    live.inner = store.snapshots.create({ name: s.name, filter: s.filter }).id;
    this.live.set(id, live);
    return { id };
  }

  /**
   * Idempotent while it runs: a second caller (close() during a run's stop, two MCP clients) gets
   * the stop already in flight. Stopping again would stop the recorder under the first drain —
   * its marker never seen, a false "unproven" after the drain timeout — and close the store twice.
   */
  stopSnapshot(id: string): Promise<StoppedSnapshot> {
    const inFlight = this.stopping.get(id);
    if (inFlight) return inFlight;
    const live = this.live.get(id);
    if (!live) return this.stopOrphan(id);
    const stop = this.stopLive(id, live).finally(() => this.stopping.delete(id));
    this.stopping.set(id, stop);
    return stop;
  }

  private async stopLive(id: string, live: Live): Promise<StoppedSnapshot> {
    const d = await live.recorder.drain();
    live.until = d.at;
    live.recorder.stop();
    // The recorder decoded exactly this snapshot's capture; stopping ended its open connections.
    this.coverage.set(id, live.recorder.pipeline.coverage());
    if (this.coverage.size > KEPT_COVERAGE) this.coverage.delete(this.coverage.keys().next().value!);
    const snap = live.store.snapshots.stop(live.inner)!;
    await live.store.close();
    this.live.delete(id);
    release(live.dir);
    return { ...snap, id, drained: d.proven ? 'proven' : 'unproven' };
  }

  async listSnapshots(): Promise<Snapshot[]> {
    return listSnapshots(this.dataDir);
  }

  async getSnapshot(id: string): Promise<Snapshot | undefined> {
    return readSnapshot(this.dataDir, id);
  }

  capturedFlows(id: string): number | undefined {
    return this.live.get(id)?.flows;
  }

  async query(q: FlowQuery): Promise<FlowPage> {
    if (q.snapshot === undefined) {
      throw new Error(`snapshot: a local capture keeps flows per snapshot: give a snapshot id (see list_snapshots; data in ${this.dataDir})`);
    }
    return this.withStore(q.snapshot, (store, s) => this.page(store, s, q));
  }

  /** One page of a snapshot's flows: its window and filter, narrowed by the query's. */
  private async page(store: FlowStore, s: Snapshot, q: FlowQuery): Promise<{ flows: FlowRecord[]; next?: string }> {
    const since = Math.max(s.since, timeOf('since', q.since) ?? -Infinity);
    const until = Math.min(s.until ?? Infinity, timeOf('until', q.until) ?? Infinity);
    const page = await store.query({
      since, until: Number.isFinite(until) ? until : undefined, filter: await both(s.filter, q.filter),
      limit: Math.min(PAGE, Math.max(1, q.limit ?? 100)), cursor: q.cursor,
    });
    return { flows: page.flows, ...(page.next ? { next: page.next } : {}) };
  }

  async snapshotFlows(id: string, max = MAX_SNAPSHOT_FLOWS): Promise<FlowRecord[]> {
    // One store open for every page (a stopped snapshot's store is opened per call).
    return this.withStore(id, async (store, s) => {
      const out: FlowRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await this.page(store, s, { snapshot: id, limit: PAGE, cursor });
        for (const f of page.flows) out.push(f);
        if (out.length > max) throw new Error(`snapshot ${id} holds more than ${max} flows`);
        cursor = page.next;
      } while (cursor);
      return out;
    });
  }

  decodeCoverage(id: string): DecodeCoverage | undefined {
    return this.coverage.get(id);
  }

  async flow(id: string): Promise<FlowRecord | undefined> {
    for (const l of this.live.values()) {
      const r = await l.store.get(id);
      if (r) return r;
    }
    // Newest snapshots first: a flow asked about is most likely from a recent run.
    for (const s of (await this.listSnapshots()).reverse()) {
      if (this.live.has(s.id) || (s.open && liveOwner(this.dirOf(s.id)) !== undefined)) continue;
      const r = await this.withStore(s.id, (store) => store.get(id));
      if (r) return r;
    }
    return undefined;
  }

  async exportPcap(snapshot: string, dest: string): Promise<{ path: string; bytes: number; loss?: string }> {
    return this.withStore(snapshot, async (store, s) => {
      const out = createWriteStream(dest);
      const r = await store.exportPcap(s.since, s.until ?? store.stats().newest ?? s.since, out);
      out.end();
      await once(out, 'close');
      return { path: dest, bytes: statSync(dest).size, loss: realLoss(r.lost) };
    });
  }

  async addRun(r: RunRecord): Promise<void> {
    this.log().append(r);
  }

  async runs(q: { limit?: number } = {}): Promise<RunRecord[]> {
    const { runs, problems } = this.log().list(q.limit);
    for (const p of problems) (this.o.onWarning ?? warn)(p);
    return runs;
  }

  /**
   * Stops (and drains) any snapshot still recording: a closed backend captures nothing. A stop
   * already in flight is waited for, not repeated (stopSnapshot returns it).
   */
  async close(): Promise<void> {
    // Every snapshot is stopped even when one fails; the first failure is then thrown.
    const failed = (await Promise.allSettled([...this.live.keys()].map((id) => this.stopSnapshot(id))))
      .find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private log(): RunLog<RunRecord> {
    return (this.runLog ??= openRunLog(this.dataDir));
  }

  private redactorOf(): Redactor {
    return (this.redactor ??= new Redactor({ key: this.o.redactKey ?? loadRedactKey().key }));
  }

  private dirOf(id: string): string {
    return join(snapshotsDir(this.dataDir), id);
  }

  private sync(l: Live): void {
    if (l.syncing) return;
    l.syncing = true;
    l.store.sync().catch((e) => (this.o.onWarning ?? warn)(`snapshot store sync failed: ${(e as Error).message}`))
      .finally(() => { l.syncing = false; });
  }

  /**
   * A snapshot whose recorder is not in this process: one already stopped is returned as it is;
   * one whose recording process died (a crash) is closed at its last write, unproven.
   */
  private async stopOrphan(id: string): Promise<StoppedSnapshot> {
    const s = this.need(id);
    if (!s.open) return s;
    const dir = this.dirOf(id);
    const until = lastWrite(dir);
    const store = await FlowStore.open({ dir, maxBytes: KEEP_BYTES, maxAgeSec: NO_AGE_LIMIT, memoryFlows: MEMORY_FLOWS, now: () => until });
    try {
      const inner = store.snapshots.list()[0]!;
      return { ...store.snapshots.stop(inner.id)!, id, drained: 'unproven' };
    } finally {
      await store.close();
    }
  }

  /** Runs `f` over a snapshot's store: the live one, or the one on disk opened for the call. */
  private async withStore<T>(id: string, f: (store: FlowStore, s: Snapshot) => Promise<T>): Promise<T> {
    const live = this.live.get(id);
    if (live) return f(live.store, { ...live.store.snapshots.get(live.inner)!, id });
    const s = this.need(id);
    if (s.open) await this.stopOrphan(id);
    // Stopping an orphan rewrote it: read it again only then.
    const snap = s.open ? this.need(id) : s;
    // Read-only: a stopped snapshot is only read here, so no writer lock, and several calls (or processes) may read it at once.
    const store = await FlowStore.open({ dir: this.dirOf(id), maxBytes: KEEP_BYTES, maxAgeSec: NO_AGE_LIMIT, memoryFlows: MEMORY_FLOWS, readOnly: true });
    try {
      return await f(store, snap);
    } finally {
      await store.close();
    }
  }

  private need(id: string): Snapshot {
    const s = readSnapshot(this.dataDir, id);
    if (!s) throw new Error(`snapshot: no local snapshot "${id}" in ${snapshotsDir(this.dataDir)}`);
    const owner = s.open ? liveOwner(this.dirOf(id)) : undefined;
    if (owner !== undefined && !this.live.has(id)) throw new Error(`snapshot ${id} is still being recorded by process ${owner}: stop it there first`);
    return s;
  }
}

function warn(message: string): void {
  process.stderr.write(`tapwire: ${message}\n`);
}

/**
 * What a local export lost, or 'none'. A local store starts with its snapshot, so the store's
 * notes that the window starts before its first packet (or that it holds none) are no loss here:
 * they are left out, and what remains (a crash that cut a segment) is said.
 */
function realLoss(lost: string | null): string {
  const parts = (lost ?? '').split('; ').filter((p) => p !== '' && !/^no packets kept before .*, the first one kept$/.test(p) && p !== 'the store holds no packets');
  return parts.length ? parts.join('; ') : 'none';
}

/**
 * The CEL filter module, loaded when a filter is first used: CEL's evaluator is the costliest
 * module to load (about 0.25 s here), and most runs (`tapwire run`) never filter.
 */
function celFilters(): Promise<typeof import('../query/index.js')> {
  return import('../query/index.js');
}

/** The snapshot's own filter and the query's, both compiled (a FilterError names the position). */
async function both(a: string | undefined, b: string | undefined): Promise<FlowPredicate | undefined> {
  const given = [a, b].filter((x): x is string => x !== undefined && x !== '');
  if (given.length === 0) return undefined;
  const { compileFilter } = await celFilters();
  const fs = given.map(compileFilter);
  return fs.length === 1 ? fs[0] : (r) => fs.every((f) => f(r));
}
