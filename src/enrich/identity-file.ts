/**
 * The static identities file (--identities): one Enricher, and one IdentitySource (types.ts).
 * Records get each side's own identity: src.{name, namespace, workload, node} and dst.{…}, only the
 * fields that are known.
 *
 * File format (JSON), either a map keyed by IP:
 *
 *   { "10.99.0.11": { "name": "orders-7c9", "namespace": "shop", "workload": "orders", "node": "node-1" } }
 *
 * or a list, handy when identities are generated:
 *
 *   { "identities": [ { "ip": "10.99.0.11", "name": "orders-7c9", "namespace": "shop", … } ] }
 *
 * Every field is optional and must be a string; other fields are refused (a misspelt "namepsace"
 * would otherwise pass silently). IPv6 addresses may be written in any valid form. An address
 * given twice is an error.
 */
import { watch as fsWatch, readFileSync, unwatchFile, watchFile, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { FlowRecord } from '../flows/index.js';
import { applyIdentity, IDENTITY_FIELDS } from './identity.js';
import { canonicalIp, unmappedIp } from './ip.js';
import type { Enricher, Identity, IdentitySource } from './types.js';


/** A bad identities file: the message names the file and, for a bad entry, its JSON path. */
export class IdentityFileError extends Error {
  constructor(readonly file: string, readonly path: string | undefined, reason: string) {
    super(path ? `${file}: ${path}: ${reason}` : `${file}: ${reason}`);
    this.name = 'IdentityFileError';
  }
}


const jsonKey = (k: string) => `$[${JSON.stringify(k)}]`;

function parseEntry(file: string, path: string, value: unknown, allowIp: boolean): Identity {
  if (!isObject(value)) {
    throw new IdentityFileError(file, path, `expected an object with name, namespace, workload, node; got ${describe(value)}`);
  }
  const id: Identity = {};
  for (const [k, v] of Object.entries(value)) {
    if (allowIp && k === 'ip') continue;
    if (!(IDENTITY_FIELDS as readonly string[]).includes(k)) {
      throw new IdentityFileError(file, `${path}.${k}`, `unknown field (expected ${allowIp ? 'ip, ' : ''}${IDENTITY_FIELDS.join(', ')})`);
    }
    if (typeof v !== 'string') throw new IdentityFileError(file, `${path}.${k}`, `expected a string, got ${describe(v)}`);
    id[k as (typeof IDENTITY_FIELDS)[number]] = v;
  }
  return id;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/** Parses an identities document; throws IdentityFileError naming `file` and the bad entry's JSON path. */
export function parseIdentities(text: string, file: string): Map<string, Identity> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new IdentityFileError(file, undefined, `not JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) {
    throw new IdentityFileError(file, '$', `expected an object keyed by IP, or { "identities": [...] }; got ${describe(doc)}`);
  }
  const map = new Map<string, Identity>();
  const add = (ipPath: string, ip: unknown, entryPath: string, entry: unknown, listForm: boolean) => {
    const key = typeof ip === 'string' ? canonicalIp(ip) : undefined;
    if (key === undefined) throw new IdentityFileError(file, ipPath, `not an IP address: ${JSON.stringify(ip)}`);
    if (map.has(key)) throw new IdentityFileError(file, ipPath, `${ip} is given twice`);
    map.set(key, parseEntry(file, entryPath, entry, listForm));
  };
  const keys = Object.keys(doc);
  if (keys.length === 1 && keys[0] === 'identities') {
    const list = doc.identities;
    if (!Array.isArray(list)) throw new IdentityFileError(file, '$.identities', `expected an array, got ${describe(list)}`);
    list.forEach((e, i) => {
      const p = `$.identities[${i}]`;
      if (!isObject(e)) throw new IdentityFileError(file, p, `expected an object with ip, ${IDENTITY_FIELDS.join(', ')}; got ${describe(e)}`);
      if (!('ip' in e)) throw new IdentityFileError(file, `${p}.ip`, 'missing');
      add(`${p}.ip`, e.ip, p, e, true);
    });
  } else {
    for (const [ip, e] of Object.entries(doc)) add(jsonKey(ip), ip, jsonKey(ip), e, false);
  }
  return map;
}

/** Identities from a JSON file (--identities), optionally reloaded when the file changes. */
export class IdentityMap implements IdentitySource, Enricher {
  readonly name = 'identities-file';
  private text: string;

  private constructor(readonly file: string, text: string, private map: Map<string, Identity>) {
    this.text = text;
  }

  /** Reads and checks the file; throws IdentityFileError (file, JSON path, reason) or the read error. */
  static load(file: string): IdentityMap {
    const text = readIdentityFile(file);
    return new IdentityMap(file, text, parseIdentities(text, file));
  }

  get size(): number {
    return this.map.size;
  }

  lookup(ip: string): Identity | undefined {
    const hit = this.map.get(ip);
    if (hit || !ip.includes(':')) return hit;
    // Another spelling of an IPv6 address, or IPv4-mapped IPv6 (::ffff:10.0.0.1).
    const canon = canonicalIp(ip);
    if (!canon) return undefined;
    const v4 = unmappedIp(canon);
    return (v4 !== undefined ? this.map.get(v4) : undefined) ?? this.map.get(canon);
  }

  enrich(r: FlowRecord): void {
    applyIdentity(this, r);
  }

  /**
   * Reads the file again. Returns whether the map changed; throws as load() does, keeping the
   * map it had.
   */
  reload(): boolean {
    const text = readIdentityFile(this.file);
    if (text === this.text) return false;
    this.map = parseIdentities(text, this.file);
    this.text = text;
    return true;
  }

  /**
   * Reloads when the file changes: edited in place, replaced by rename (editors, atomic writes),
   * or swapped behind a symlink (a Kubernetes ConfigMap volume). A bad or missing new file keeps
   * the old map; `onReload` hears of every reload that changed the map, and of every error.
   * Returns a function that stops watching. The watchers do not keep the process alive.
   */
  watch(onReload?: (err?: Error) => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let lastError = '';
    const check = () => {
      timer = undefined;
      try {
        if (this.reload()) onReload?.();
        lastError = '';
      } catch (e) {
        // Report a failure once, not on every poll that finds the same bad file.
        const msg = (e as Error).message;
        if (msg !== lastError) onReload?.(e as Error);
        lastError = msg;
      }
    };
    // Changes come in bursts (truncate, then write): settle for a moment before reading.
    const soon = () => {
      if (!timer) timer = setTimeout(check, 25).unref();
    };
    const name = basename(this.file);
    let dirWatcher: FSWatcher | undefined;
    try {
      // The directory, not the file: a file replaced by rename is a new inode a file watch misses.
      dirWatcher = fsWatch(dirname(this.file), { persistent: false }, (_event, changed) => {
        if (!changed || changed === name || changed.startsWith('..')) soon();
      });
      dirWatcher.on('error', () => undefined);
    } catch {
      dirWatcher = undefined;
    }
    // A slow stat poll as well, for file systems without inotify and for changes behind symlinks.
    const poll = () => soon();
    watchFile(this.file, { interval: 1000, persistent: false }, poll);
    return () => {
      dirWatcher?.close();
      unwatchFile(this.file, poll);
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
  }
}

function readIdentityFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new IdentityFileError(file, undefined, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
