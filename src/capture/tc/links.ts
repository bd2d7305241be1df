/**
 * Network links as they come and go (issue 18), so that the TC source can capture every pod veth:
 * native/netlink.c reads rtnetlink (rtnetlink(7)) on a thread of its own: first a dump of every
 * link, then RTM_NEWLINK / RTM_DELLINK as they happen; it hands the raw netlink messages here.
 *
 * The kernel sends RTM_NEWLINK for a new link and again for each change of one (flags, name,
 * carrier …), RTM_DELLINK when it goes away or leaves this network namespace (a pod's veth end
 * moved into the pod). A link is known by its ifindex, reported by its name: a rename is a remove
 * of the old name and an add of the new one. When the kernel drops events (ENOBUFS: the receive
 * buffer overflowed), the addon asks for a new dump, marking it, and the set here is reconciled
 * with it: what the dump lacks went away, and the differences are reported.
 *
 * Netlink's byte order is the host's (netlink(7)). A message that does not parse is counted
 * (`malformed`), never thrown.
 */
import { endianness } from 'node:os';
import { addonLoadError, loadAddon } from '../tls/addon.js';

export interface Link {
  ifindex: number;
  /** IFLA_IFNAME. */
  name: string;
  /** IFLA_LINKINFO's IFLA_INFO_KIND ("veth", "bridge" …); absent for physical devices and lo. */
  kind?: string;
  /** IFF_UP in ifi_flags: administratively up. */
  up: boolean;
}

export interface LinkChange {
  added: Link[];
  removed: Link[];
}

export interface LinkWatchCounters {
  /** RTM_NEWLINK and RTM_DELLINK messages taken, dumps included. */
  events: number;
  /** Times events were lost and a new dump reconciled the set. */
  resyncs: number;
  /** Netlink messages (or batch tails) that did not parse. */
  malformed: number;
}

/** One parsed message of a batch. */
export type LinkMessage =
  | { type: 'link'; deleted: boolean; link: Link }
  /** A dump ended (NLMSG_DONE), or failed (NLMSG_ERROR with its errno; the addon asks again). */
  | { type: 'done'; seq: number }
  | { type: 'error'; seq: number; errno: number }
  /** Events were lost: a new dump follows, up to its 'done'. */
  | { type: 'resync'; seq: number };

// linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if.h
const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const IFINFOMSG_LEN = 16;
const AF_UNSPEC = 0;
const IFLA_IFNAME = 3;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
/** NLA_F_NESTED and NLA_F_NET_BYTEORDER ride in an attribute's type. */
const NLA_TYPE_MASK = 0x3fff;
const IFF_UP = 0x1;
/** native/netlink.c's own marker: above every rtnetlink type. */
export const TW_NLMSG_RESYNC = 0x7f00;
/** IFNAMSIZ less the NUL. */
const IFNAME_MAX = 15;

const le = endianness() === 'LE';
const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
const i32 = (b: Buffer, o: number) => (le ? b.readInt32LE(o) : b.readInt32BE(o));
const align4 = (n: number) => (n + 3) & ~3;

/**
 * The messages of one batch, in order, and how many did not parse. Bounded by the batch: every
 * step moves on by at least a header. A header whose length runs past the batch ends it (the rest
 * cannot be framed) and counts once.
 */
export function parseLinkBatch(batch: Buffer): { messages: LinkMessage[]; malformed: number } {
  const messages: LinkMessage[] = [];
  let malformed = 0;
  let off = 0;
  while (off < batch.length) {
    if (batch.length - off < NLMSG_HDRLEN) {
      malformed++;
      break;
    }
    const len = u32(batch, off);
    if (len < NLMSG_HDRLEN || len > batch.length - off) {
      malformed++;
      break;
    }
    const type = u16(batch, off + 4);
    const seq = u32(batch, off + 8);
    const body = batch.subarray(off + NLMSG_HDRLEN, off + len);
    if (type === RTM_NEWLINK || type === RTM_DELLINK) {
      const m = parseIfinfo(body);
      if (m === undefined) malformed++;
      else if (m !== null) messages.push({ type: 'link', deleted: type === RTM_DELLINK, link: m });
    } else if (type === NLMSG_DONE) {
      messages.push({ type: 'done', seq });
    } else if (type === NLMSG_ERROR) {
      // struct nlmsgerr: a negative errno, then the request's header (netlink(7)).
      if (body.length < 4) malformed++;
      else messages.push({ type: 'error', seq, errno: -i32(body, 0) });
    } else if (type === TW_NLMSG_RESYNC) {
      messages.push({ type: 'resync', seq });
    }
    // Others (NLMSG_NOOP …) are not ours to read. The kernel pads each message to 4 bytes.
    off += Math.min(align4(len), batch.length - off);
  }
  return { messages, malformed };
}

/**
 * A link of an RTM_NEWLINK/RTM_DELLINK body; null for a message that is not about a link of this
 * namespace's table (a bridge port's, ifi_family AF_BRIDGE: a port leaving its bridge is not a
 * link going away); undefined when it does not parse.
 */
function parseIfinfo(body: Buffer): Link | null | undefined {
  if (body.length < IFINFOMSG_LEN) return undefined;
  if (body[0] !== AF_UNSPEC) return null;
  const ifindex = i32(body, 4);
  const flags = u32(body, 8);
  let name: string | undefined;
  let kind: string | undefined;
  for (const [type, value] of attributes(body.subarray(IFINFOMSG_LEN))) {
    if (type === IFLA_IFNAME) name = cString(value);
    else if (type === IFLA_LINKINFO) {
      for (const [t, v] of attributes(value)) {
        if (t === IFLA_INFO_KIND) kind = cString(v);
        else if (t < 0) return undefined;
      }
    } else if (type < 0) return undefined;
  }
  if (ifindex <= 0 || name === undefined || name.length === 0 || Buffer.byteLength(name) > IFNAME_MAX) return undefined;
  return kind ? { ifindex, name, kind, up: (flags & IFF_UP) !== 0 } : { ifindex, name, up: (flags & IFF_UP) !== 0 };
}

/** Route attributes (struct rtattr: u16 len, u16 type, value, padded to 4); a bad length yields [-1, empty] and ends. */
function* attributes(b: Buffer): Generator<[number, Buffer]> {
  let off = 0;
  while (b.length - off >= 4) {
    const len = u16(b, off);
    if (len < 4 || len > b.length - off) {
      yield [-1, Buffer.alloc(0)];
      return;
    }
    yield [u16(b, off + 2) & NLA_TYPE_MASK, b.subarray(off + 4, off + len)];
    off += align4(len);
  }
}

/** A NUL-terminated string attribute (the NUL may be missing). */
function cString(v: Buffer): string {
  const nul = v.indexOf(0);
  return v.subarray(0, nul < 0 ? v.length : nul).toString('utf8');
}

/**
 * The set of links, kept from parsed messages: changes are reported one by one between dumps,
 * and once per dump at its end (all of them after the first dump; the differences after a resync).
 * Pure, so that reconciling is tested without a kernel.
 */
export class LinkTable {
  /** Every link of the namespace, matching or not, by ifindex. */
  private readonly all = new Map<number, Link>();
  /** While a dump runs: what matched before it, and what the dump or an event said since it began. */
  private dump?: { before: Map<number, Link>; touched: Set<number> };
  private initialDone = false;
  readonly counters: LinkWatchCounters = { events: 0, resyncs: 0, malformed: 0 };

  constructor(
    private readonly onChange: (c: LinkChange) => void,
    private readonly match: (l: Link) => boolean = () => true,
  ) {
    // The addon's first request is a dump.
    this.dump = { before: new Map(), touched: new Set() };
  }

  /** Whether the first dump has ended (and was reported). */
  get ready(): boolean {
    return this.initialDone;
  }

  /** The matching links, by ifindex. */
  links(): Link[] {
    return [...this.all.values()].filter(this.match).sort((a, b) => a.ifindex - b.ifindex).map((l) => ({ ...l }));
  }

  feed(batch: Buffer): void {
    const { messages, malformed } = parseLinkBatch(batch);
    this.counters.malformed += malformed;
    for (const m of messages) this.apply(m);
  }

  apply(m: LinkMessage): void {
    if (m.type === 'resync') {
      this.counters.resyncs++;
      // A new dump replaces one that had not ended: what it said is said again.
      if (this.dump) this.dump.touched = new Set();
      else this.dump = { before: this.matching(), touched: new Set() };
    } else if (m.type === 'done') {
      if (this.dump) this.endDump(this.dump);
    } else if (m.type === 'link') {
      this.counters.events++;
      const { ifindex } = m.link;
      const old = this.all.get(ifindex);
      if (m.deleted) this.all.delete(ifindex);
      else this.all.set(ifindex, m.link);
      // Events and dump parts come in the kernel's order: each dump part is made when it is read,
      // after every event queued before it, so the last word on a link is the right one.
      if (this.dump) this.dump.touched.add(ifindex);
      else this.report(diff([[old, this.all.get(ifindex)]], this.match));
    }
    // 'error': the dump failed; the addon asks again, marked as a resync.
  }

  private matching(): Map<number, Link> {
    return new Map([...this.all].filter(([, l]) => this.match(l)));
  }

  private endDump(d: { before: Map<number, Link>; touched: Set<number> }): void {
    this.dump = undefined;
    // A link the dump did not list and no event named since it began is gone.
    for (const ifindex of [...this.all.keys()]) if (!d.touched.has(ifindex)) this.all.delete(ifindex);
    const now = this.matching();
    const keys = [...new Set([...d.before.keys(), ...now.keys()])].sort((a, b) => a - b);
    const c = diff(keys.map((k) => [d.before.get(k), now.get(k)]), this.match);
    if (!this.initialDone) {
      this.initialDone = true;
      this.onChange(c); // the first dump is reported even when empty: the set is known from here
    } else this.report(c);
  }

  private report(c: LinkChange): void {
    if (c.added.length || c.removed.length) this.onChange(c);
  }
}

/** Per ifindex, its link before and after: removed unless still matching under the same name, and the converse. */
function diff(pairs: [Link | undefined, Link | undefined][], match: (l: Link) => boolean): LinkChange {
  const c: LinkChange = { added: [], removed: [] };
  for (const [before, after] of pairs) {
    const was = before && match(before) ? before : undefined;
    const is = after && match(after) ? after : undefined;
    if (was && is && was.name === is.name) continue;
    if (was) c.removed.push({ ...was });
    if (is) c.added.push({ ...is });
  }
  return c;
}

/** The addon's link watch (native/netlink.c). */
interface LinkWatchAddon {
  linkWatch(onEvents: (batch: Buffer) => void, receiveBufferBytes?: number): LinkWatchHandle;
  linkWatchClose(handle: LinkWatchHandle): void;
}
type LinkWatchHandle = { readonly __brand: 'LinkWatchHandle' };

/** Why links cannot be watched here ('' when they can). Route events need no privilege. */
export function linkWatchUnavailable(): string {
  if (process.platform !== 'linux') return `rtnetlink needs Linux (this is ${process.platform})`;
  const err = addonLoadError();
  if (err) return err;
  if (typeof (loadAddon() as unknown as Partial<LinkWatchAddon>).linkWatch !== 'function') return 'the eBPF addon predates the link watch: rebuild it with npm run build:native';
  return '';
}

export interface LinkWatchOptions {
  /** Which links to report and list; default every one (see linkMatcher). */
  match?: (l: Link) => boolean;
  /**
   * The netlink socket's receive buffer; default 8 MiB (past rmem_max when privileged). Events
   * beyond it while JS is busy are lost, then found again by a resync.
   */
  receiveBufferBytes?: number;
}

/**
 * The links of this network namespace, followed as they come and go. `onChange` is called once
 * when the first dump ends, with every matching link added (possibly none), then for each add,
 * remove or rename (a remove and an add), and with the differences after a resync. A link whose
 * match changes (a rename, or a matcher that looks at `up`) is added or removed accordingly.
 * The watch keeps the process alive until close().
 */
export class LinkWatch {
  private readonly table: LinkTable;
  private handle?: LinkWatchHandle;

  private constructor(table: LinkTable) {
    this.table = table;
  }

  static open(onChange: (c: LinkChange) => void, o: LinkWatchOptions = {}): LinkWatch {
    const why = linkWatchUnavailable();
    if (why) throw new Error(`the link watch is unavailable: ${why}`);
    const rcv = o.receiveBufferBytes;
    if (rcv !== undefined && !(Number.isInteger(rcv) && rcv >= 1024 && rcv <= 2 ** 30)) throw new Error(`link watch: receiveBufferBytes ${rcv} is not an integer in 1024..2^30`);
    const addon = loadAddon() as unknown as LinkWatchAddon;
    const w = new LinkWatch(new LinkTable(onChange, o.match));
    w.handle = addon.linkWatch((batch) => {
      if (w.handle) w.table.feed(batch); // batches queued before close() are dropped
    }, rcv);
    return w;
  }

  get counters(): LinkWatchCounters {
    return { ...this.table.counters };
  }

  /** Whether the first dump has been reported. */
  get ready(): boolean {
    return this.table.ready;
  }

  links(): Link[] {
    return this.table.links();
  }

  close(): void {
    if (!this.handle) return;
    const h = this.handle;
    this.handle = undefined;
    (loadAddon() as unknown as LinkWatchAddon).linkWatchClose(h);
  }
}

/**
 * A link filter from interface names and globs (`*` any run of characters: `veth*`, `lxc*`,
 * `cali*`); `any` or `*` is every link. Throws naming a pattern that no interface name could
 * match: empty, longer than 15 bytes (IFNAMSIZ), or with `/`, `:` or whitespace (the kernel's
 * dev_valid_name).
 */
export function linkMatcher(patterns: string[]): (l: Link) => boolean {
  if (!patterns.length) throw new Error('interface patterns: none given (use "any" for every link)');
  const res: RegExp[] = [];
  for (const p of patterns) {
    if (p === 'any' || p === '*') return () => true;
    if (!p) throw new Error('interface pattern "": empty');
    if (Buffer.byteLength(p) > IFNAME_MAX) throw new Error(`interface pattern "${p}": longer than ${IFNAME_MAX} bytes (interface names are at most ${IFNAME_MAX})`);
    if (/[/:\s]/.test(p)) throw new Error(`interface pattern "${p}": an interface name has no "/", ":" or whitespace`);
    if (p === '.' || p === '..') throw new Error(`interface pattern "${p}": not an interface name`);
    res.push(new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's'));
  }
  return (l) => res.some((r) => r.test(l.name));
}
