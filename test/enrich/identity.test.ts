import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyIdentity, IdentityFileError, IdentityMap, parseIdentities } from '../../src/enrich/index.js';
import type { FlowRecord } from '../../src/flows/record.js';

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tapwire-identity-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, doc: unknown) => {
  const file = join(dir, name);
  writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2));
  return file;
};

const ORDERS = { name: 'orders-7c9', namespace: 'shop', workload: 'orders', node: 'node-1' };
const PG = { name: 'pg-0', namespace: 'data', workload: 'postgres', node: 'node-2' };

function record(src: string, dst: string): FlowRecord {
  return {
    id: 'abc-1', protocol: 'http', connectionId: 'abc', src: { ip: src, port: 40000 }, dst: { ip: dst, port: 8080 },
    start: 1, end: 2, durationMs: 1000,
  };
}

/** Resolves once `onReload` has been called `n` times; returns the errors it got. */
function reloads(map: IdentityMap, n: number): { done: Promise<(Error | undefined)[]>; stop: () => void } {
  const seen: (Error | undefined)[] = [];
  let stop = () => undefined as void;
  const done = new Promise<(Error | undefined)[]>((resolve) => {
    stop = map.watch((err) => {
      seen.push(err);
      if (seen.length === n) resolve(seen);
    });
  });
  return { done, stop };
}

describe('IdentityMap', () => {
  it('loads a map keyed by IP and fills each side of a record with its own identity', () => {
    const file = write('ids.json', { '10.99.0.11': ORDERS, '10.99.0.20': PG, '10.99.0.30': { workload: 'batch' } });
    const ids = IdentityMap.load(file);
    expect(ids.size).toBe(3);
    expect(ids.lookup('10.99.0.11')).toEqual(ORDERS);
    expect(ids.lookup('10.99.0.12')).toBeUndefined();
    const r = record('10.99.0.11', '10.99.0.20');
    ids.enrich(r);
    expect(r.src).toEqual({ ip: '10.99.0.11', port: 40000, ...ORDERS });
    expect(r.dst).toEqual({ ip: '10.99.0.20', port: 8080, ...PG });
    // Only the fields that are known: no undefined keys in the JSONL record.
    const partial = record('10.99.0.30', '192.0.2.1');
    ids.enrich(partial);
    expect(partial.src).toEqual({ ip: '10.99.0.30', port: 40000, workload: 'batch' });
    expect(Object.keys(partial.dst)).toEqual(['ip', 'port']);
    expect(JSON.stringify(partial.src)).toBe('{"ip":"10.99.0.30","port":40000,"workload":"batch"}');
  });

  it('loads the list form too', () => {
    const file = write('ids.json', { identities: [{ ip: '10.99.0.11', ...ORDERS }, { ip: 'fd00::20', ...PG }] });
    const ids = IdentityMap.load(file);
    expect(ids.lookup('10.99.0.11')).toEqual(ORDERS);
    expect(ids.lookup('fd00::20')).toEqual(PG);
  });

  it('matches IPv6 however it is written, and IPv4-mapped IPv6 to the IPv4 entry', () => {
    const ids = IdentityMap.load(write('ids.json', { 'FD00:0:0:0:0:0:0:0020': PG, '10.99.0.11': ORDERS }));
    expect(ids.lookup('fd00::20')).toEqual(PG); // the form records carry (RFC 5952)
    expect(ids.lookup('fd00:0::0:20')).toEqual(PG);
    expect(ids.lookup('::ffff:10.99.0.11')).toEqual(ORDERS);
    expect(ids.lookup('::ffff:a63:b')).toEqual(ORDERS);
  });

  it('works through the IdentitySource interface a Kubernetes source will share', () => {
    const r = record('10.0.0.1', '10.0.0.2');
    applyIdentity({ lookup: (ip) => (ip === '10.0.0.2' ? { name: 'api-0', namespace: 'prod' } : undefined) }, r);
    expect(r.dst).toEqual({ ip: '10.0.0.2', port: 8080, name: 'api-0', namespace: 'prod' });
    expect(r.src).toEqual({ ip: '10.0.0.1', port: 40000 });
  });

  it('names the file and the JSON path of a bad entry', () => {
    const cases: [unknown, string][] = [
      [{ '10.99.0.11': { ...ORDERS, namespace: 7 } }, '$["10.99.0.11"].namespace: expected a string, got number 7'],
      [{ '10.99.0.11': ORDERS, 'orders.shop': ORDERS }, '$["orders.shop"]: not an IP address: "orders.shop"'],
      [{ '10.99.0.11': { ...ORDERS, namepsace: 'shop' } }, '$["10.99.0.11"].namepsace: unknown field (expected name, namespace, workload, node, service)'],
      [{ '10.99.0.11': 'orders' }, '$["10.99.0.11"]: expected an object'],
      [{ identities: [{ ip: '10.99.0.11', ...ORDERS }, { ...PG }] }, '$.identities[1].ip: missing'],
      [{ identities: [{ ip: '10.99.0.11' }, { ip: '10.99.0.300' }] }, '$.identities[1].ip: not an IP address: "10.99.0.300"'],
      [{ identities: [{ ip: '10.99.0.11', node: null }] }, '$.identities[0].node: expected a string, got null'],
      [{ identities: [{ ip: '10.99.0.11' }, { ip: '10.99.0.11' }] }, '$.identities[1].ip: 10.99.0.11 is given twice'],
      [{ identities: { ip: '10.99.0.11' } }, '$.identities: expected an array, got an object'],
      [{ 'fd00::20': PG, 'fd00:0::20': PG }, '$["fd00:0::20"]: fd00:0::20 is given twice'],
      [[ORDERS], '$: expected an object keyed by IP'],
    ];
    for (const [doc, msg] of cases) {
      const file = write('bad.json', doc);
      expect(() => IdentityMap.load(file)).toThrow(IdentityFileError);
      expect(() => IdentityMap.load(file)).toThrow(`${file}: ${msg}`);
    }
    const notJson = write('bad.json', '{ "10.99.0.11": ');
    expect(() => IdentityMap.load(notJson)).toThrow(new RegExp(`^${notJson}: not JSON: `));
    expect(() => IdentityMap.load(join(dir, 'absent.json'))).toThrow(`${join(dir, 'absent.json')}: cannot read: ENOENT`);
    expect(() => parseIdentities('{}', 'x.json')).not.toThrow();
  });

  it('reloads when the file is rewritten in place', async () => {
    const file = write('ids.json', { '10.99.0.11': ORDERS });
    const ids = IdentityMap.load(file);
    const w = reloads(ids, 1);
    write('ids.json', { '10.99.0.11': { ...ORDERS, name: 'orders-8d1' }, '10.99.0.20': PG });
    expect(await w.done).toEqual([undefined]);
    w.stop();
    expect(ids.lookup('10.99.0.11')?.name).toBe('orders-8d1');
    expect(ids.lookup('10.99.0.20')).toEqual(PG);
  });

  it('reloads when the file is replaced by rename, as editors and atomic writers do', async () => {
    const file = write('ids.json', { '10.99.0.11': ORDERS });
    const ids = IdentityMap.load(file);
    const w = reloads(ids, 2);
    renameSync(write('ids.json.tmp', { '10.99.0.20': PG }), file);
    await new Promise((r) => setTimeout(r, 200));
    renameSync(write('ids.json.tmp', { '10.99.0.30': ORDERS }), file);
    expect(await w.done).toEqual([undefined, undefined]);
    w.stop();
    expect(ids.lookup('10.99.0.30')).toEqual(ORDERS);
    expect(ids.lookup('10.99.0.11')).toBeUndefined();
  });

  it('follows a Kubernetes ConfigMap volume: the file is a symlink through a swapped ..data link', async () => {
    const v1 = write('..2026_01_01_v1.json', { '10.99.0.11': ORDERS });
    const v2 = write('..2026_01_01_v2.json', { '10.99.0.11': PG });
    // ..data → a versioned file; identities.json → ..data (a file here, a directory in Kubernetes).
    symlinkSync(v1, join(dir, '..data'));
    const file = join(dir, 'identities.json');
    symlinkSync(join(dir, '..data'), file);
    const ids = IdentityMap.load(file);
    expect(ids.lookup('10.99.0.11')).toEqual(ORDERS);
    const w = reloads(ids, 1);
    symlinkSync(v2, join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    expect(await w.done).toEqual([undefined]);
    w.stop();
    expect(ids.lookup('10.99.0.11')).toEqual(PG);
  });

  it('keeps the old map when the new file is bad, reports it once, and takes the next good one', async () => {
    const file = write('ids.json', { '10.99.0.11': ORDERS });
    const ids = IdentityMap.load(file);
    const w = reloads(ids, 2);
    write('ids.json', { '10.99.0.11': { name: 5 } });
    await new Promise((r) => setTimeout(r, 300));
    expect(ids.lookup('10.99.0.11')).toEqual(ORDERS);
    write('ids.json', { '10.99.0.11': PG });
    const [err, ok] = await w.done;
    w.stop();
    expect(err).toBeInstanceOf(IdentityFileError);
    expect(err!.message).toBe(`${file}: $["10.99.0.11"].name: expected a string, got number 5`);
    expect(ok).toBeUndefined();
    expect(ids.lookup('10.99.0.11')).toEqual(PG);
  });

  it('stops watching when told to', async () => {
    const file = write('ids.json', { '10.99.0.11': ORDERS });
    const ids = IdentityMap.load(file);
    let calls = 0;
    const stop = ids.watch(() => { calls++; });
    stop();
    write('ids.json', { '10.99.0.11': PG });
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(0);
    expect(ids.lookup('10.99.0.11')).toEqual(ORDERS);
    expect(ids.reload()).toBe(true);
    expect(ids.reload()).toBe(false);
    expect(ids.lookup('10.99.0.11')).toEqual(PG);
  });
});

describe('enrichers in a chain', () => {
  it('apply in order, each in place: a later one fills what an earlier one did not know', async () => {
    const { enrichers } = await import('../../src/enrich/index.js');
    const r = { src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: '10.0.0.2', port: 80 } } as unknown as Parameters<ReturnType<typeof enrichers>['enrich']>[0];
    const first = { name: 'a', enrich: (x: typeof r) => { x.dst.name = 'orders-7c9'; } };
    const second = { name: 'b', enrich: (x: typeof r) => { x.dst.namespace = x.dst.name ? 'shop' : 'unknown'; } };
    const both = enrichers([first, second]);
    both.enrich(r);
    expect(both.name).toBe('a+b');
    expect(r.dst).toEqual({ ip: '10.0.0.2', port: 80, name: 'orders-7c9', namespace: 'shop' });
  });
});
