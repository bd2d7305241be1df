import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ClusterEvent } from '../../src/enrich/index.js';
import { EventLog } from '../../src/store/events.js';
import { FlowStore } from '../../src/store/index.js';
import { tempDirs } from './helpers.js';

const newDir = tempDirs();
const NOW = Date.now() / 1000;

function ev(id: string, time: number, o: Partial<ClusterEvent> = {}): ClusterEvent {
  return { id, time, kind: 'restart', namespace: 'payments', pod: 'payment-7f9c', container: 'app', reason: 'OOMKilled', exitCode: 137, source: 'pod-status', ...o };
}

const segmentFiles = (dir: string) => readdirSync(dir).filter((f) => /^events-\d+\.jsonl$/.test(f)).sort();

async function open(dir: string, o: { eventBytes?: number; readOnly?: boolean } = {}) {
  return FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 86_400, ...o });
}

describe('events kept with the flows', () => {
  it('are queried by window, namespace and pod, oldest first, from memory of nothing but the files', async () => {
    const dir = newDir();
    const store = await open(dir);
    expect(store.addEvent(ev('c', NOW - 10, { kind: 'probe-failed', pod: 'checkout-1', namespace: 'shop' }))).toBe(true);
    expect(store.addEvent(ev('a', NOW - 30))).toBe(true);
    expect(store.addEvent(ev('b', NOW - 20, { pod: 'payment-abcd' }))).toBe(true);
    expect(store.events({}).events.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    expect(store.events({ since: NOW - 25, until: NOW - 15 }).events.map((e) => e.id)).toEqual(['b']);
    expect(store.events({ namespace: 'payments' }).events.map((e) => e.id)).toEqual(['a', 'b']);
    expect(store.events({ pod: 'payment-7f9c' }).events).toEqual([ev('a', NOW - 30)]);
    expect(store.events({ since: NOW })).toEqual({ events: [] });
    await store.close();
  });

  it('are deduplicated by id, the first kept, in one process and across a reopen (which writes a fresh segment)', async () => {
    const dir = newDir();
    let store = await open(dir);
    store.addEvent(ev('x', NOW - 5, { reason: 'first' }));
    expect(store.addEvent(ev('x', NOW - 1, { reason: 'second' }))).toBe(false);
    await store.close();
    store = await open(dir);
    expect(store.addEvent(ev('x', NOW - 1, { reason: 'third' }))).toBe(false);
    expect(store.addEvent(ev('y', NOW - 1))).toBe(true);
    expect(store.events({}).events.map((e) => [e.id, e.reason])).toEqual([['x', 'first'], ['y', 'OOMKilled']]);
    await store.close();
    // Each writer appends to a segment of its own: an old one (perhaps with a torn tail) is never reopened.
    expect(segmentFiles(dir)).toEqual(['events-000001.jsonl', 'events-000002.jsonl']);
    const reader = await open(dir, { readOnly: true });
    expect(reader.events({}).events.map((e) => e.id)).toEqual(['x', 'y']);
    expect(() => reader.addEvent(ev('z', NOW))).toThrow(/read-only/);
    await reader.close();
  });

  it('an event older than the age limit is not kept; an event without a time is refused by name', async () => {
    const dir = newDir();
    const store = await FlowStore.open({ dir, maxBytes: 1 << 20, maxAgeSec: 60 });
    expect(store.addEvent(ev('old', NOW - 120))).toBe(false);
    expect(() => store.addEvent(ev('bad', Number.NaN))).toThrow('event bad: time NaN is not a time');
    expect(store.events({}).events).toEqual([]);
    await store.close();
  });

  it('damaged lines are counted and named, never thrown: a line not JSON, a non-event, a crash\'s cut tail (truncated by the next writer)', async () => {
    const dir = newDir();
    let store = await open(dir);
    store.addEvent(ev('a', NOW - 30));
    store.addEvent(ev('b', NOW - 20));
    await store.close();
    const file = join(dir, 'events-000001.jsonl');
    const [l1, l2] = readFileSync(file, 'utf8').split('\n');
    writeFileSync(file, `${l1}\n{"id":"a2","ti\u0000me\n[1,2]\n${l2}\n{"id":"c","time":${NOW - 10},"kind":"rest`);
    const reader = await open(dir, { readOnly: true });
    const r = reader.events({});
    expect(r.events.map((e) => e.id)).toEqual(['a', 'b']);
    expect(r.lost).toMatch(/^3 damaged event lines skipped \(events-000001\.jsonl line 2: not JSON .*; events-000001\.jsonl line 3: not an event \(not a JSON object\); events-000001\.jsonl line 5: cut short/);
    expect(reader.eventStats()).toMatchObject({ events: 2, damaged: 3 });
    await reader.close();
    // A reader changed nothing; a writer cuts the torn tail off and says so at this open.
    expect(readFileSync(file, 'utf8')).toMatch(/"kind":"rest$/);
    store = await open(dir);
    expect(store.eventStats().problems).toHaveLength(3);
    expect(readFileSync(file, 'utf8').endsWith('\n')).toBe(true);
    store.addEvent(ev('c', NOW - 10));
    expect(store.events({}).events.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    await store.close();
    store = await open(dir);
    // What is left in the file is the two damaged lines inside it, named again.
    expect(store.eventStats().damaged).toBe(2);
    expect(store.events({ since: NOW - 15 }).lost).toBeUndefined();
    await store.close();
  });

  it('damage a query meets after open is counted once', async () => {
    const dir = newDir();
    const store = await open(dir);
    store.addEvent(ev('a', NOW - 30));
    const file = join(dir, segmentFiles(dir)[0]!);
    // Another hand (the disk) spoils the line in place.
    writeFileSync(file, readFileSync(file, 'utf8').replace('"id":"a"', '"id"x"a"'));
    expect(store.events({}).lost).toMatch(/line 1: not JSON/);
    expect(store.events({}).lost).toMatch(/line 1: not JSON/);
    expect(store.eventStats().damaged).toBe(1);
    await store.close();
  });
});

describe('event retention', () => {
  it('by age: a segment whose newest event expired is deleted, the one being written is not', () => {
    const dir = newDir();
    const log = EventLog.open(dir, { maxBytes: 1 << 20, maxAgeSec: 3600, segmentBytes: 300 });
    for (let i = 0; i < 6; i++) log.add(ev(`e${i}`, NOW - 3000 + i * 100), NOW);
    const before = log.stats().segments;
    expect(before).toBeGreaterThan(2);
    // An hour on: e0…e5 (3000 … 2500 s before NOW) are all older than the limit; the active segment stays.
    const removed = log.retain(NOW + 3600 - 3600 + 2400, []);
    expect(removed.every((r) => r.reason === 'age')).toBe(true);
    expect(log.stats().segments).toBe(1);
    expect(segmentFiles(dir)).toHaveLength(1);
    // Their ids are forgotten with them: dedupe spans what is kept.
    expect(log.has('e0')).toBe(false);
  });

  it('by size: the oldest segments go until the budget fits, except those a snapshot pins', async () => {
    const dir = newDir();
    const log = EventLog.open(dir, { maxBytes: 2000, maxAgeSec: 86_400, segmentBytes: 500 });
    for (let i = 0; i < 40; i++) log.add(ev(`e${String(i).padStart(2, '0')}`, NOW - 4000 + i * 100, { message: 'x'.repeat(40) }), NOW);
    const pinned = { since: NOW - 4000, until: NOW - 3950 };
    log.retain(0, [pinned]);
    const s = log.stats();
    expect(s.evictions).toBeGreaterThan(0);
    expect(s.bytes).toBeLessThanOrEqual(2000 + 500);
    const ids = log.query({}).events.map((e) => e.id);
    // The pinned first segment survives; the newest are there; the middle went.
    expect(ids[0]).toBe('e00');
    expect(ids.at(-1)).toBe('e39');
    expect(ids).not.toContain('e10');
    await log.close();
  });

  it('through the store: sync applies retention, and a snapshot pins the events of its window', async () => {
    const dir = newDir();
    const store = await FlowStore.open({ dir, maxBytes: 64 << 20, maxAgeSec: 86_400, eventBytes: 4096 });
    store.snapshots.create({ since: NOW - 5000, until: NOW - 4900, name: 'run' });
    for (let i = 0; i < 200; i++) store.addEvent(ev(`e${String(i).padStart(3, '0')}`, NOW - 5000 + i * 20, { message: 'y'.repeat(60) }));
    await store.sync();
    const kept = store.events({}).events.map((e) => e.id);
    expect(kept).toContain('e000');
    expect(kept).toContain('e199');
    expect(kept).not.toContain('e100');
    // Segments are at least 4 KiB: what stays is the budget's worth, at most one pinned segment over it, and the one being written.
    expect(store.eventStats().bytes).toBeLessThanOrEqual(3 * 4096);
    expect(store.eventStats().evictions).toBeGreaterThan(0);
    await store.close();
  });

  it('a segment appended to after a crash cut is not: the next writer starts its own', async () => {
    const dir = newDir();
    let store = await open(dir);
    store.addEvent(ev('a', NOW - 3));
    await store.close();
    appendFileSync(join(dir, 'events-000001.jsonl'), '{"id":"torn"');
    store = await open(dir);
    store.addEvent(ev('b', NOW - 2));
    await store.close();
    expect(readFileSync(join(dir, 'events-000001.jsonl'), 'utf8').split('\n').filter(Boolean)).toHaveLength(1);
    expect(readFileSync(join(dir, 'events-000002.jsonl'), 'utf8')).toContain('"id":"b"');
  });
});
