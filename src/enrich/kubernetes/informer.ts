/**
 * One resource kept in sync with the API server: list, then watch from the list's resourceVersion
 * (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
 *
 * Why not the client library's makeInformer (ListWatch in cache.js, 1.4.0): it sends no
 * allowWatchBookmarks, stops for good on any watch error other than 410 (a dropped connection
 * ends the informer), reconnects with no backoff, counts nothing, and hands watch events over as
 * raw JSON while list items are typed (dates as Date objects). This one keeps the library's parts
 * that matter (KubeConfig's TLS and credentials, its Watch stream, the typed list calls, the
 * object serializer) and does the loop itself:
 *
 * - Lists in pages (limit 500, as client-go's reflector), restarting the list if a page's continue
 *   token expires (410).
 * - Watches with `allowWatchBookmarks=true`, so the resourceVersion to resume from stays recent
 *   while nothing changes (the server sends BOOKMARK events; KEP-956), and `timeoutSeconds`
 *   randomised in [5, 10] min (client-go's reflector does the same), so watches of many agents do
 *   not all end together. A watch that outlives its timeout by 30 s is cut: the connection hung.
 * - A watch that ends early (connection dropped, server error) is reopened from the last
 *   resourceVersion after a backoff: exponential from `initialMs`, capped at `maxMs`, with equal
 *   jitter (half fixed, half random), reset once a watch has lived 10 s or delivered an event.
 * - 410 Gone (the resourceVersion was compacted away, as an ERROR event or as the response
 *   status) relists, and the new list is diffed against the cache: what disappeared is reported
 *   deleted, what changed updated, so nothing missed while disconnected is lost.
 * - Never polls: between a list and the next 410 there are only watches.
 *
 * The cache is keyed by namespace/name; an object replaced by another of the same name (a new
 * uid) is reported as a delete and an add.
 */
import type { KubeConfig, KubernetesObject, Watch } from '@kubernetes/client-node';

export type InformerEventType = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (type: InformerEventType, obj: T, old?: T) => void;

export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string };
}
export type Lister<T> = (opts: { fieldSelector?: string; labelSelector?: string; limit: number; _continue?: string }) => Promise<ListPage<T>>;

export interface InformerTuning {
  /** First reconnect delay after a failure, ms (default 500). */
  initialBackoffMs?: number;
  /** Longest reconnect delay, ms (default 30 000). */
  maxBackoffMs?: number;
  /** Watch timeoutSeconds is drawn from [min, max] (default [300, 600]). */
  watchTimeoutSec?: [number, number];
  /** List page size (default 500). */
  pageSize?: number;
  /** Randomness for jitter and timeouts (tests). */
  random?: () => number;
}

export interface InformerOptions<T> extends InformerTuning {
  /** Plural resource name, for messages and RBAC hints: 'pods'. */
  resource: string;
  /** API group, '' for core. */
  group: string;
  /** Collection path: '/api/v1/pods'. */
  path: string;
  /** The library's model name, to type watch events as lists are: 'V1Pod'. */
  type: string;
  list: Lister<T>;
  fieldSelector?: string;
  labelSelector?: string;
  /** Applied to each object before it is cached (drop what is not needed: managedFields). */
  transform?: (obj: T) => T;
}

export interface InformerCounters {
  /** List calls that completed (pages of one list count once). */
  lists: number;
  /** Watch requests opened. */
  watches: number;
  /** Watches reopened after ending early (dropped connection, server error), not by their timeout. */
  restarts: number;
  /** Relists after 410 Gone. */
  relists: number;
  /** ADDED, MODIFIED and DELETED events received. */
  events: number;
  bookmarks: number;
  /** Errors seen (each also reported to onError). */
  errors: number;
}

/** A request the API refused or that failed: names the verb, the resource and what to do. */
export class InformerError extends Error {
  constructor(readonly verb: 'list' | 'watch', readonly resource: string, readonly group: string, readonly status: number | undefined, detail: string) {
    const what = group ? `${resource}.${group}` : resource;
    let hint = '';
    if (status === 403) hint = `: RBAC: the account needs "${verb}" on ${resource} (apiGroups: ["${group}"])`;
    else if (status === 401) hint = ': the credentials were not accepted';
    super(`cannot ${verb} ${what}: ${detail}${hint}`);
    this.name = 'InformerError';
  }
}

type WatchEnd = { kind: 'timeout' | 'closed' | 'gone' | 'error' | 'stopped'; events: number; err?: unknown };

/**
 * The delay before reconnect attempt `n` (0-based), in ms: exponential from `initialMs`, capped
 * at `maxMs`, with equal jitter (half fixed, half random), so agents that lost the API server
 * together do not come back together, and none waits less than half its step.
 */
export function backoffDelay(n: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const d = Math.min(maxMs, initialMs * 2 ** Math.min(n, 30));
  return d / 2 + (d / 2) * random();
}

const key = (o: KubernetesObject) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.statusCode === 'number') return e.statusCode;
  if (typeof e?.code === 'number') return e.code;
  return undefined;
}

function detailOf(err: unknown): string {
  const status = statusOf(err);
  const body = (err as { body?: unknown })?.body;
  let message: string | undefined;
  if (typeof body === 'string') {
    try {
      message = (JSON.parse(body) as { message?: string }).message;
    } catch {
      message = undefined;
    }
  } else if (body && typeof body === 'object') {
    message = (body as { message?: string }).message;
  }
  message ??= (err as Error)?.message?.split('\n')[0] ?? String(err);
  return status ? `${status}: ${message}` : message;
}

export class Informer<T extends KubernetesObject> {
  private readonly cache = new Map<string, T>();
  private rv = '';
  private stopped = false;
  private synced = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private watcher: Watch | undefined;
  private deserialize: ((raw: unknown) => T) | undefined;
  private readonly counts: InformerCounters = { lists: 0, watches: 0, restarts: 0, relists: 0, events: 0, bookmarks: 0, errors: 0 };
  private readonly random: () => number;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: InformerOptions<T>,
    private readonly handler: InformerHandler<T>,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {
    this.random = opts.random ?? Math.random;
  }

  /** Objects cached now. */
  get size(): number {
    return this.cache.size;
  }

  /** Whether the first list is in and the first watch opened. */
  get isSynced(): boolean {
    return this.synced;
  }

  values(): IterableIterator<T> {
    return this.cache.values();
  }

  counters(): InformerCounters {
    return { ...this.counts };
  }

  /**
   * Lists, opens the watch, and resolves once both have answered; rejects (and stops) with an
   * InformerError when the first list or watch is refused. Later failures are retried, and
   * reported to onError.
   */
  start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const first = {
        resolve: () => {
          if (this.synced) return;
          this.synced = true;
          resolve();
        },
        reject: (e: Error) => {
          if (this.synced) return;
          this.stopped = true;
          reject(e);
        },
      };
      this.run(first).then(
        () => first.reject(new Error(`${this.opts.resource}: informer stopped before its first list`)),
        (e: unknown) => first.reject(e as Error),
      );
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    this.wake?.();
  }

  private async load(): Promise<void> {
    if (this.watcher) return;
    const k8s = await import('@kubernetes/client-node');
    // The library's serializer, as its typed list calls use it: watch events then carry the same
    // types (Date for timestamps). Not re-exported at the package root; the version is pinned.
    const { ObjectSerializer } = await import('@kubernetes/client-node/dist/serializer.js');
    this.watcher = new k8s.Watch(this.kc);
    this.deserialize = (raw) => ObjectSerializer.deserialize(raw, this.opts.type) as T;
  }

  private async run(first: { resolve(): void; reject(e: Error): void }): Promise<void> {
    await this.load();
    let attempt = 0;
    while (!this.stopped) {
      if (!this.rv) {
        try {
          await this.relist();
        } catch (e) {
          if (this.stopped) return;
          const err = new InformerError('list', this.opts.resource, this.opts.group, statusOf(e), detailOf(e));
          if (!this.synced) return first.reject(err);
          this.report(err);
          await this.sleep(this.backoff(attempt++));
          continue;
        }
      }
      const started = Date.now();
      const end = await this.watchOnce(() => {
        if (!this.synced) first.resolve();
      });
      if (this.stopped || end.kind === 'stopped') return;
      if (end.events > 0 || Date.now() - started > 10_000) attempt = 0;
      if (end.kind === 'timeout') continue;
      if (end.kind === 'gone') {
        this.rv = '';
        this.counts.relists++;
        // A relist that is itself stale at once would loop: back off from the second in a row.
        if (attempt > 0) await this.sleep(this.backoff(attempt - 1));
        attempt++;
        continue;
      }
      const status = statusOf(end.err);
      const err = new InformerError('watch', this.opts.resource, this.opts.group, status, end.err ? detailOf(end.err) : 'the connection closed early');
      if (!this.synced && (status === 401 || status === 403)) return first.reject(err);
      if (end.err) this.report(err);
      this.counts.restarts++;
      const delay = attempt === 0 ? 0 : this.backoff(attempt - 1);
      attempt++;
      if (delay > 0) await this.sleep(delay);
    }
  }

  private backoff(n: number): number {
    return backoffDelay(n, this.opts.initialBackoffMs ?? 500, this.opts.maxBackoffMs ?? 30_000, this.random);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms).unref();
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = undefined;
    });
  }

  private report(err: Error): void {
    this.counts.errors++;
    this.onError(err);
  }

  /** A full list, in pages, diffed against the cache. */
  private async relist(): Promise<void> {
    const limit = this.opts.pageSize ?? 500;
    for (;;) {
      const items: T[] = [];
      let cont: string | undefined;
      let rv = '';
      let expired = false;
      do {
        let page: ListPage<T>;
        try {
          page = await this.opts.list({ fieldSelector: this.opts.fieldSelector, labelSelector: this.opts.labelSelector, limit, _continue: cont });
        } catch (e) {
          // The continue token expired between pages: the whole list starts again.
          if (cont && statusOf(e) === 410) {
            expired = true;
            break;
          }
          throw e;
        }
        if (this.stopped) return;
        items.push(...page.items);
        rv = page.metadata?.resourceVersion ?? rv;
        cont = page.metadata?._continue || undefined;
      } while (cont);
      if (expired) continue;
      this.counts.lists++;
      this.replace(items);
      this.rv = rv;
      return;
    }
  }

  private replace(items: T[]): void {
    const fresh = new Map<string, T>();
    for (const raw of items) {
      const obj = this.opts.transform ? this.opts.transform(raw) : raw;
      fresh.set(key(obj), obj);
    }
    for (const [k, old] of [...this.cache]) {
      const now = fresh.get(k);
      if (!now || now.metadata?.uid !== old.metadata?.uid) {
        this.cache.delete(k);
        this.emit('delete', old);
      }
    }
    for (const [k, obj] of fresh) this.upsert(k, obj);
  }

  private upsert(k: string, obj: T): void {
    const old = this.cache.get(k);
    if (old && old.metadata?.uid !== obj.metadata?.uid) {
      this.cache.delete(k);
      this.emit('delete', old);
      this.cache.set(k, obj);
      this.emit('add', obj);
      return;
    }
    if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.cache.set(k, obj);
    if (old) this.emit('update', obj, old);
    else this.emit('add', obj);
  }

  private emit(type: InformerEventType, obj: T, old?: T): void {
    try {
      this.handler(type, obj, old);
    } catch (e) {
      this.report(e as Error);
    }
  }

  private watchOnce(opened: () => void): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      const [lo, hi] = this.opts.watchTimeoutSec ?? [300, 600];
      const timeoutSec = Math.round(lo + (hi - lo) * this.random());
      const started = Date.now();
      let events = 0, gone = false, ended = false;
      let status: Error | undefined;
      const controller: { current?: AbortController } = {};
      const hung = setTimeout(() => controller.current?.abort(), (timeoutSec + 30) * 1000).unref();
      const done = (err: unknown) => {
        if (ended) return;
        ended = true;
        clearTimeout(hung);
        this.abort = undefined;
        if (this.stopped) resolve({ kind: 'stopped', events });
        else if (gone || statusOf(err) === 410) resolve({ kind: 'gone', events });
        else if (err || status) resolve({ kind: 'error', events, err: err ?? status });
        else if (Date.now() - started >= timeoutSec * 1000 - 1000) resolve({ kind: 'timeout', events });
        else resolve({ kind: 'closed', events });
      };
      const params: Record<string, string | number | boolean | undefined> = {
        allowWatchBookmarks: true,
        resourceVersion: this.rv,
        timeoutSeconds: timeoutSec,
        fieldSelector: this.opts.fieldSelector,
        labelSelector: this.opts.labelSelector,
      };
      this.counts.watches++;
      const onEvent = (type: string, raw: unknown) => {
        if (ended || this.stopped) return;
        const meta = (raw as KubernetesObject | undefined)?.metadata;
        switch (type) {
          case 'BOOKMARK':
            this.counts.bookmarks++;
            if (meta?.resourceVersion) this.rv = meta.resourceVersion;
            return;
          case 'ERROR': {
            // A Status object: 410 means the resourceVersion is too old (compacted).
            const s = raw as { code?: number; message?: string };
            if (s?.code === 410) gone = true;
            else status = Object.assign(new Error(s?.message ?? 'watch error'), { statusCode: s?.code });
            return;
          }
          case 'ADDED':
          case 'MODIFIED':
          case 'DELETED': {
            events++;
            this.counts.events++;
            let obj = this.deserialize!(raw);
            if (this.opts.transform) obj = this.opts.transform(obj);
            const k = key(obj);
            if (type === 'DELETED') {
              const old = this.cache.get(k);
              this.cache.delete(k);
              this.emit('delete', obj, old);
            } else {
              this.upsert(k, obj);
            }
            if (meta?.resourceVersion) this.rv = meta.resourceVersion;
            return;
          }
          default:
            return;
        }
      };
      this.watcher!.watch(this.opts.path, params, onEvent, done).then(
        (ctrl) => {
          if (ended) return;
          controller.current = ctrl;
          this.abort = ctrl;
          if (this.stopped) ctrl.abort();
          else opened();
        },
        (e: unknown) => done(e),
      );
    });
  }
}
