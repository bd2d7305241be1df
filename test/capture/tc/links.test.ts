/**
 * The link watch (issue 18): rtnetlink's links as they come and go, for the TC source to follow pod
 * veths. Everywhere: the matcher, the parser on built, truncated and random bytes, and the set's
 * reconciling after a resync. With root and the addon: the first dump lists lo; a veth pair shows
 * up, its up does not re-add it, a rename is a remove and an add, a delete is a remove, an end moved
 * into a network namespace leaves this one; a real batch cut at every byte; a process or worker that
 * exits with a watch open does not hang. Otherwise that part skips, saying why.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkTable, LinkWatch, linkMatcher, linkWatchUnavailable, parseLinkBatch, TW_NLMSG_RESYNC, type Link, type LinkChange } from '../../../src/capture/tc/links.js';
import { ADDON_PATH, loadAddon } from '../../../src/capture/tls/addon.js';

const le = endianness() === 'LE';
const u16 = (n: number) => { const b = Buffer.alloc(2); if (le) b.writeUInt16LE(n); else b.writeUInt16BE(n); return b; };
const u32 = (n: number) => { const b = Buffer.alloc(4); if (le) b.writeUInt32LE(n >>> 0); else b.writeUInt32BE(n >>> 0); return b; };
const pad4 = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
const attr = (type: number, value: Buffer) => pad4(Buffer.concat([u16(4 + value.length), u16(type), value]));
const nlmsg = (type: number, body: Buffer, seq = 0) => pad4(Buffer.concat([u32(16 + body.length), u16(type), u16(0), u32(seq), u32(0), body]));
/** An RTM_NEWLINK (16) or RTM_DELLINK (17) as the kernel writes it: ifinfomsg, IFLA_IFNAME, IFLA_LINKINFO{IFLA_INFO_KIND}. */
function linkMsg(l: Link, o: { deleted?: boolean; family?: number } = {}): Buffer {
  const info = Buffer.concat([Buffer.from([o.family ?? 0, 0]), u16(1), u32(l.ifindex), u32(l.up ? 0x1043 : 0x1002), u32(0)]);
  const attrs = [attr(3, Buffer.from(`${l.name}\0`)), attr(13, u32(1500))];
  if (l.kind) attrs.push(attr(18 | 0x8000, attr(1, Buffer.from(`${l.kind}\0`))));
  return nlmsg(o.deleted ? 17 : 16, Buffer.concat([info, ...attrs]));
}
const done = (seq = 1) => nlmsg(3, u32(0), seq);
const resync = (seq = 2) => nlmsg(TW_NLMSG_RESYNC, Buffer.alloc(0), seq);

const lo: Link = { ifindex: 1, name: 'lo', up: true };
const eth0: Link = { ifindex: 2, name: 'eth0', up: true };
const veth = (ifindex: number, name: string, up = false): Link => ({ ifindex, name, kind: 'veth', up });
const names = (ls: Link[]) => ls.map((l) => l.name).sort();

describe('linkMatcher', () => {
  it('matches names and globs; any and * match every link', () => {
    const m = linkMatcher(['eth0', 'veth*', 'cali*x']);
    expect(m(eth0)).toBe(true);
    expect(m({ ...eth0, name: 'eth01' })).toBe(false);
    expect(m(veth(5, 'veth1234'))).toBe(true);
    expect(m(veth(5, 'veth'))).toBe(true);
    expect(m(veth(5, 'xveth1'))).toBe(false);
    expect(m(veth(5, 'cali12x'))).toBe(true);
    expect(m(veth(5, 'cali12y'))).toBe(false);
    expect(linkMatcher(['a.b'])({ ...eth0, name: 'aXb' })).toBe(false); // a dot is a dot
    for (const p of ['any', '*']) expect(linkMatcher(['lo', p])(veth(9, 'whatever'))).toBe(true);
  });
  it('rejects a pattern no interface name could match, naming it', () => {
    expect(() => linkMatcher([])).toThrow(/none given/);
    expect(() => linkMatcher(['eth0', ''])).toThrow(/pattern "": empty/);
    expect(() => linkMatcher(['abcdefghijklmnop'])).toThrow(/"abcdefghijklmnop": longer than 15 bytes/);
    expect(() => linkMatcher(['veth/1'])).toThrow(/"veth\/1": .*no "\/"/);
    expect(() => linkMatcher(['eth 0'])).toThrow(/"eth 0"/);
    expect(() => linkMatcher(['eth0:1'])).toThrow(/"eth0:1"/);
    expect(() => linkMatcher(['..'])).toThrow(/"\.\.": not an interface name/);
    expect(linkMatcher(['abcdefghijklmno'])({ ...eth0, name: 'abcdefghijklmno' })).toBe(true);
  });
});

describe('parseLinkBatch', () => {
  const batch = Buffer.concat([linkMsg(lo), linkMsg(veth(7, 'veth7', true)), linkMsg(veth(7, 'veth7'), { deleted: true }), done(1), nlmsg(2, u32(-16 >>> 0), 4), resync(5)]);
  const bounds = [0];
  for (let off = 0; off < batch.length;) bounds.push((off += (le ? batch.readUInt32LE(off) : batch.readUInt32BE(off)) + 3 & ~3));

  it('reads links, dump ends, errors and resync markers', () => {
    expect(parseLinkBatch(batch)).toEqual({
      malformed: 0,
      messages: [
        { type: 'link', deleted: false, link: lo },
        { type: 'link', deleted: false, link: veth(7, 'veth7', true) },
        { type: 'link', deleted: true, link: veth(7, 'veth7') },
        { type: 'done', seq: 1 },
        { type: 'error', seq: 4, errno: 16 },
        { type: 'resync', seq: 5 },
      ],
    });
  });
  it("passes over a bridge port's messages (AF_BRIDGE) and unknown types, counts bad ones", () => {
    const r = parseLinkBatch(Buffer.concat([linkMsg(veth(3, 'p'), { family: 7, deleted: true }), nlmsg(1, Buffer.alloc(4)), nlmsg(16, Buffer.alloc(8)), linkMsg({ ...lo, name: '' }), linkMsg(lo)]));
    expect(r).toEqual({ malformed: 2, messages: [{ type: 'link', deleted: false, link: lo }] });
    // an attribute longer than its message
    const bad = linkMsg(lo);
    bad.writeUInt16LE(200, 32);
    expect(parseLinkBatch(Buffer.concat([bad, done()]))).toEqual({ malformed: 1, messages: [{ type: 'done', seq: 1 }] });
  });
  it('never throws on a batch cut at any byte: whole messages before the cut, one malformed unless it falls between two', () => {
    const all = parseLinkBatch(batch).messages;
    for (let cut = 0; cut <= batch.length; cut++) {
      const whole = bounds.filter((b) => b <= cut).length - 1;
      const r = parseLinkBatch(batch.subarray(0, cut));
      expect(r.messages).toEqual(all.slice(0, whole));
      expect(r.malformed).toBe(bounds.includes(cut) ? 0 : 1);
      expect(() => parseLinkBatch(batch.subarray(cut))).not.toThrow();
    }
  });
  it('never throws on random bytes', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    for (let i = 0; i < 2000; i++) {
      const b = Buffer.from(Array.from({ length: Math.floor(rand() * 120) }, () => Math.floor(rand() * 256)));
      if (b.length >= 16 && rand() < 0.5) b.writeUInt32LE(Math.floor(rand() * b.length), 0);
      if (b.length >= 16 && rand() < 0.5) b.writeUInt16LE(16 + Math.floor(rand() * 2), 4);
      expect(() => parseLinkBatch(b)).not.toThrow();
    }
  });
});

describe('LinkTable', () => {
  function table(match?: (l: Link) => boolean) {
    const changes: LinkChange[] = [];
    const t = new LinkTable((c) => changes.push(c), match);
    return { t, changes, feed: (...m: Buffer[]) => t.feed(Buffer.concat(m)) };
  }

  it('reports the first dump once at its end, then adds, removes and renames as they come', () => {
    const { t, changes, feed } = table();
    feed(linkMsg(lo), linkMsg(eth0));
    expect(changes).toEqual([]);
    feed(done());
    expect(t.ready).toBe(true);
    expect(changes).toEqual([{ added: [lo, eth0], removed: [] }]);
    feed(linkMsg(veth(5, 'veth5')));
    feed(linkMsg(veth(5, 'veth5', true))); // up: no news
    feed(linkMsg(veth(5, 'veth6', true))); // renamed
    feed(linkMsg(veth(5, 'veth6', true), { deleted: true }));
    expect(changes.slice(1)).toEqual([
      { added: [veth(5, 'veth5')], removed: [] },
      { added: [veth(5, 'veth6', true)], removed: [veth(5, 'veth5', true)] },
      { added: [], removed: [veth(5, 'veth6', true)] },
    ]);
    expect(t.counters).toEqual({ events: 6, resyncs: 0, malformed: 0 });
    expect(t.links()).toEqual([lo, eth0]);
  });
  it('reports an empty first dump (the set is known), and only matching links; a rename in or out of the match is an add or a remove', () => {
    const { t, changes, feed } = table(linkMatcher(['veth*']));
    feed(linkMsg(lo), done());
    expect(changes).toEqual([{ added: [], removed: [] }]);
    feed(linkMsg(veth(5, 'x5')), linkMsg(veth(5, 'veth5')), linkMsg(veth(5, 'y5')));
    expect(changes.slice(1)).toEqual([{ added: [veth(5, 'veth5')], removed: [] }, { added: [], removed: [veth(5, 'veth5')] }]);
    expect(t.links()).toEqual([]);
  });
  it('after a resync, reports what differs from the new dump: gone, new, renamed', () => {
    const { t, changes, feed } = table();
    feed(linkMsg(lo), linkMsg(veth(5, 'veth5')), linkMsg(veth(6, 'veth6')), linkMsg(veth(7, 'veth7')), done());
    changes.length = 0;
    // events were lost: veth5 went away, veth6 was renamed, veth8 came, veth7 only went up
    feed(resync(), linkMsg(lo), linkMsg(veth(6, 'pod6')));
    feed(linkMsg(veth(9, 'veth9')), linkMsg(veth(7, 'veth7', true)), linkMsg(veth(8, 'veth8')), done(2));
    expect(changes).toEqual([{ added: [veth(6, 'pod6'), veth(8, 'veth8'), veth(9, 'veth9')], removed: [veth(5, 'veth5'), veth(6, 'veth6')] }]);
    expect(names(t.links())).toEqual(['lo', 'pod6', 'veth7', 'veth8', 'veth9']);
    expect(t.counters.resyncs).toBe(1);
    // a quiet resync reports nothing
    feed(resync(3), ...t.links().map((l) => linkMsg(l)), done(3));
    expect(changes).toHaveLength(1);
  });
  it('keeps what an event said during a dump, and a second marker restarts an unfinished dump', () => {
    const { t, changes, feed } = table();
    feed(linkMsg(lo), linkMsg(veth(5, 'veth5')), done());
    changes.length = 0;
    feed(resync(), linkMsg(lo));
    feed(linkMsg(veth(9, 'veth9'))); // an event after the dump passed its place
    feed(nlmsg(2, u32(-4 >>> 0), 2)); // the dump failed (EINTR); the addon asks again
    feed(resync(3), linkMsg(lo), linkMsg(veth(9, 'veth9')), done(3));
    expect(changes).toEqual([{ added: [veth(9, 'veth9')], removed: [veth(5, 'veth5')] }]);
    expect(t.counters.resyncs).toBe(2);
  });
});

const why = linkWatchUnavailable() || (process.getuid?.() === 0 ? '' : 'not root (ip link add needs CAP_NET_ADMIN)') ||
  (() => { try { execFileSync('ip', ['-V'], { stdio: 'ignore' }); return ''; } catch { return 'no ip (iproute2)'; } })();
if (why) console.log(`test/capture/tc/links.test.ts (the live part) skipped: ${why}`);

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const quiet = (...args: string[]) => { try { ip(...args); } catch { /* already gone */ } };
const RESYNC_LINKS = 150;
const NAMES = ['twl0a', 'twl0c', 'twl1a', 'twl2a', 'twl3a', ...Array.from({ length: RESYNC_LINKS }, (_, i) => `twlr${i}`)];
const NS = 'twlns1';
function cleanUp() {
  for (const n of NAMES) quiet('link', 'del', n);
  quiet('netns', 'del', NS);
}

/** Polls until `ok()` holds; fails after `ms` (events come within milliseconds). */
async function until(ok: () => boolean, what: string, ms = 1000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.skipIf(why !== '')('LinkWatch on this host', () => {
  const log: { op: 'add' | 'remove'; link: Link }[] = [];
  let w: LinkWatch;
  const seen = (op: 'add' | 'remove', name: string) => () => log.some((e) => e.op === op && e.link.name === name);

  beforeAll(async () => {
    cleanUp();
    w = LinkWatch.open((c) => {
      for (const l of c.removed) log.push({ op: 'remove', link: l });
      for (const l of c.added) log.push({ op: 'add', link: l });
    });
    await until(() => w.ready, 'the first dump');
  });
  afterAll(() => {
    w?.close();
    w?.close();
    cleanUp();
  });

  it('lists every link of the namespace in the first dump, lo up with its ifindex', () => {
    const ifindex = Number(readFileSync('/sys/class/net/lo/ifindex', 'utf8'));
    expect(log.find((e) => e.link.name === 'lo')).toEqual({ op: 'add', link: { ifindex, name: 'lo', up: true } });
    expect(names(w.links())).toEqual(names(log.map((e) => e.link)));
    const sys = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0].trim()).filter(Boolean);
    expect(names(w.links())).toEqual(sys.sort());
  });

  it('sees a veth pair come, go up without news, be renamed (remove + add) and be deleted', async () => {
    const from = log.length;
    ip('link', 'add', 'twl0a', 'type', 'veth', 'peer', 'name', 'twl0b');
    await until(() => seen('add', 'twl0a')() && seen('add', 'twl0b')(), 'both ends added');
    const a = log.find((e) => e.link.name === 'twl0a')!.link;
    expect(a).toEqual({ ifindex: Number(readFileSync('/sys/class/net/twl0a/ifindex', 'utf8')), name: 'twl0a', kind: 'veth', up: false });
    expect(log.slice(from).map((e) => `${e.op} ${e.link.name} ${e.link.kind}`).sort()).toEqual(['add twl0a veth', 'add twl0b veth']);

    ip('link', 'set', 'twl0a', 'up');
    await until(() => w.links().some((l) => l.name === 'twl0a' && l.up), 'twl0a up in links()');
    expect(log).toHaveLength(from + 2);

    ip('link', 'set', 'twl0a', 'down');
    ip('link', 'set', 'twl0a', 'name', 'twl0c');
    await until(() => seen('add', 'twl0c')(), 'twl0c added');
    expect(log.slice(from + 2)).toEqual([{ op: 'remove', link: { ...a, up: false } }, { op: 'add', link: { ...a, name: 'twl0c', up: false } }]);

    ip('link', 'del', 'twl0c');
    await until(() => seen('remove', 'twl0c')() && seen('remove', 'twl0b')(), 'both ends removed');
    expect(w.links().some((l) => l.name.startsWith('twl0'))).toBe(false);
    expect(w.counters.malformed).toBe(0);
  });

  it('sees the end of a veth moved into a network namespace leave this one (a pod being made)', async () => {
    ip('link', 'add', 'twl1a', 'type', 'veth', 'peer', 'name', 'twl1b');
    await until(seen('add', 'twl1b'), 'twl1b added');
    ip('netns', 'add', NS);
    ip('link', 'set', 'twl1b', 'netns', NS);
    await until(seen('remove', 'twl1b'), 'twl1b removed');
    expect(w.links().map((l) => l.name)).toContain('twl1a');
    expect(w.links().map((l) => l.name)).not.toContain('twl1b');
    ip('netns', 'del', NS); // the pod goes: its end, then ours
    await until(seen('remove', 'twl1a'), 'twl1a removed with the namespace', 3000);
  });

  it('reports only matching links to a watch with a matcher', async () => {
    const got: LinkChange[] = [];
    const m = LinkWatch.open((c) => got.push(c), { match: linkMatcher(['twl2*']) });
    try {
      await until(() => m.ready, 'the first dump');
      expect(got).toEqual([{ added: [], removed: [] }]);
      ip('link', 'add', 'twl2a', 'type', 'veth', 'peer', 'name', 'twl3a');
      await until(() => got.length > 1, 'twl2a added');
      ip('link', 'del', 'twl2a');
      await until(() => got.length > 2, 'twl2a removed');
      expect(got.slice(1).map((c) => [names(c.added), names(c.removed)])).toEqual([[['twl2a'], []], [[], ['twl2a']]]);
    } finally {
      m.close();
    }
  });

  it('loses events while JS is busy with a tiny receive buffer, then reconciles with a new dump', async () => {
    const got: LinkChange[] = [];
    const m = LinkWatch.open((c) => got.push(c), { match: linkMatcher(['twlr*']), receiveBufferBytes: 4096 });
    const batch = (op: string) => Array.from({ length: RESYNC_LINKS }, (_, i) => op === 'add' ? `link add twlr${i} type ifb` : `link del twlr${i}`).join('\n');
    try {
      await until(() => m.ready, 'the first dump');
      // JS is blocked in execFileSync: the addon's queue fills (64 batches), then the socket overflows.
      execFileSync('ip', ['-batch', '-'], { input: batch('add'), stdio: ['pipe', 'ignore', 'pipe'] });
      await until(() => m.links().length === RESYNC_LINKS && m.counters.resyncs > 0, 'every twlr link after a resync', 5000);
      execFileSync('ip', ['-batch', '-'], { input: batch('del'), stdio: ['pipe', 'ignore', 'pipe'] });
      await until(() => m.links().length === 0, 'no twlr link left', 5000);
      expect(m.counters.resyncs).toBeGreaterThanOrEqual(2);
      // each link added once and removed once, whatever was lost on the way
      const added = got.flatMap((c) => c.added.map((l) => l.name));
      const removed = got.flatMap((c) => c.removed.map((l) => l.name));
      expect([added.length, new Set(added).size, removed.length, new Set(removed).size]).toEqual([RESYNC_LINKS, RESYNC_LINKS, RESYNC_LINKS, RESYNC_LINKS]);
      expect(m.counters.malformed).toBe(0);
    } finally {
      m.close();
    }
    expect(() => LinkWatch.open(() => {}, { receiveBufferBytes: 10 })).toThrow(/receiveBufferBytes 10/);
  });

  it('parses a real batch cut at every byte without throwing, counting the cut message', async () => {
    const addon = loadAddon() as unknown as { linkWatch(cb: (b: Buffer) => void): unknown; linkWatchClose(h: unknown): void };
    const batches: Buffer[] = [];
    const h = addon.linkWatch((b) => batches.push(Buffer.from(b)));
    try {
      await until(() => batches.some((b) => parseLinkBatch(b).messages.some((m) => m.type === 'done')), 'a dump');
    } finally {
      addon.linkWatchClose(h);
      addon.linkWatchClose(h); // twice: nothing
    }
    const real = batches.find((b) => parseLinkBatch(b).messages.filter((m) => m.type === 'link').length >= 1)!;
    const whole = parseLinkBatch(real);
    expect(whole.malformed).toBe(0);
    for (let cut = 0; cut < real.length; cut++) {
      const r = parseLinkBatch(real.subarray(0, cut));
      expect(r.malformed).toBeLessThanOrEqual(1);
      expect(whole.messages.slice(0, r.messages.length)).toEqual(r.messages);
      if (cut % 4) expect(r.malformed).toBe(1);
      expect(() => parseLinkBatch(real.subarray(cut))).not.toThrow();
    }
    expect(() => addon.linkWatchClose({})).toThrow(/not a linkWatch handle/);
  });

  it('lets a process exit, and a worker end, with a watch open', async () => {
    const src = `const a = require(${JSON.stringify(ADDON_PATH)}); a.linkWatch((b) => { console.log('batch'); process.exit(0); });`;
    const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
    const code = await new Promise<number | null>((res) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.on('exit', (c) => { clearTimeout(t); res(c); });
    });
    expect(code).toBe(0);
    const worker = new Worker(`const a = require(${JSON.stringify(ADDON_PATH)}); a.linkWatch(() => require('worker_threads').parentPort.postMessage('batch'));`, { eval: true });
    await new Promise((res) => worker.once('message', res));
    const t0 = Date.now();
    await worker.terminate();
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
