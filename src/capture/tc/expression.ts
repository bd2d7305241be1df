/**
 * The TC source's in-kernel filter (filter.ts: ports and prefixes) derived from the agent's
 * tcpdump expression (--filter, pcap-filter(7)). libpcap applies the expression exactly in
 * userspace; the kernel only has to drop early what the expression can never accept, so what is
 * derived here is a superset: every IPv4/IPv6 frame the expression accepts passes it.
 *
 * Each clause becomes (ports, nets), each a set or "all":
 *   `port N` → ({N}, all); `host A` / `net P` → (all, {P}); anything else → (all, all);
 *   `a or b` → the unions; `a and b` → per dimension one side's set, never the intersection (a frame
 *   has two ports and two addresses: `port 80 and port 443` keeps sport 80 → dport 443);
 *   `not a` → (all, all). More than TC_FILTER_MAX in a dimension → all.
 * A frame passes the kernel when (ports all, or either of its ports is listed) and (nets all, or
 * either address is in a listed prefix), which holds for every frame each clause accepts.
 *
 * One gap the kernel cannot close: libpcap's `host`/`net` with an IPv4 address and no `ip` also
 * match ARP and RARP frames (gencode: gen_host for Q_DEFAULT is ip or arp or rarp), and the kernel
 * filter drops every non-IP frame once it has anything listed. tapwire decodes only IP, so those
 * frames are left out; "superset" and `exact` are over IPv4/IPv6 frames.
 */
import { isIPv6 } from 'node:net';
import { ipBytes16 } from '../../common/index.js';
import { TC_FILTER_MAX, type TcFilter } from './filter.js';

export interface KernelPrefilter {
  /** What to load into the kernel; empty keeps every frame. */
  filter: TcFilter;
  /** True when the kernel filter alone keeps exactly the IPv4/IPv6 frames the expression keeps. */
  exact: boolean;
  /** Why nothing could be listed, when an expression was given and nothing was. */
  why?: string;
}

/** Longer expressions are not read (the parser backtracks a little): every frame goes up. */
const MAX_LENGTH = 65536;
/** Nesting of parentheses, `not` and unary minus: deeper is refused rather than risking the stack. */
const MAX_DEPTH = 200;

// ---- tokens (libpcap's scanner.l: longest match, ties to the earlier rule) ----

type Kind = 'num' | 'hid' | 'hid6' | 'eid' | 'id' | 'kw' | 'op' | 'end';
interface Tok { kind: Kind; text: string; at: number; end: number; match?: number }

const PNAMES = new Set(('ether fddi tr wlan ppp slip link radio ip arp rarp sctp tcp udp icmp igmp igrp pim vrrp carp ' +
  'atalk aarp decnet lat sca moprc mopdl ip6 icmp6 ah esp iso esis es-is isis is-is l1 l2 iih lsp snp csnp psnp clnp ' +
  'stp ipx netbeui').split(' '));
const DIRS = new Set(['src', 'dst', 'addr1', 'addr2', 'addr3', 'addr4', 'ra', 'ta']);
const AQUALS = new Set(['host', 'net', 'port', 'portrange', 'gateway', 'proto', 'protochain']);
/** Primitives that shift where every later primitive reads the frame (a tag, a label, a tunnel). */
const SHIFTING = new Set(['vlan', 'mpls', 'pppoes', 'geneve', 'vxlan', 'lane']);
const OTHER = new Set([...SHIFTING, ...('broadcast multicast less greater inbound outbound ifindex ifname on rnr rulenum ' +
  'srnr subrulenum reason rset ruleset action type subtype dir llc pppoed oamf4 oamf4ec oamf4sc oam metac bcc sc ilmic ' +
  'connectmsg metaconnect vpi vci fisu lssu msu hfisu hlssu hmsu sio opc dpc sls hsio hopc hdpc hsls').split(' ')]);
const KEYWORDS = new Set([...PNAMES, ...DIRS, ...AQUALS, ...OTHER, 'and', 'or', 'not', 'len', 'length', 'mask']);
const OPS = ['&&', '||', '!=', '==', '<=', '>=', '<<', '>>', '!', '(', ')', '[', ']', ':', '/', '&', '|', '^', '+', '-', '*', '%', '<', '>', '='];
const BINOPS = new Set(['+', '-', '*', '/', '%', '&', '|', '^', '<<', '>>']);
const RELOPS = new Set(['<', '<=', '>', '>=', '=', '==', '!=']);

const NUM = /0[xX][0-9A-Fa-f]+|[0-9]+/y;
const HID = /[0-9]+(?:\.[0-9]+){1,3}/y;
const COLONS = /[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/y;
const ID = /\\[^ !()\n\t]+|[A-Za-z0-9](?:[-_.A-Za-z0-9]*[.A-Za-z0-9])?/y;
const MAC = /^[0-9A-Fa-f]{1,2}(?::[0-9A-Fa-f]{1,2}){5}$/;

function sticky(re: RegExp, s: string, at: number): string {
  re.lastIndex = at;
  return re.exec(s)?.[0] ?? '';
}

/** The tokens of `s`, or the offset of a character no token starts with. */
function tokenize(s: string): Tok[] | number {
  const out: Tok[] = [];
  const open: number[] = [];
  let at = 0;
  while (at < s.length) {
    if (/\s/.test(s[at]!)) { at++; continue; }
    // Candidates in scanner.l's order; the longest wins, the first of equals.
    const colon = sticky(COLONS, s, at);
    const cands: [Kind, string][] = [['num', sticky(NUM, s, at)], ['hid', sticky(HID, s, at)],
      [isIPv6(colon) ? 'hid6' : 'eid', isIPv6(colon) || MAC.test(colon) ? colon : ''], ['id', sticky(ID, s, at)]];
    let best: [Kind, string] = ['end', ''];
    for (const c of cands) if (c[1].length > best[1].length) best = c;
    if (best[1]) {
      const kind = best[0] === 'id' && KEYWORDS.has(best[1]) ? 'kw' : best[0];
      out.push({ kind, text: best[1], at, end: at + best[1].length });
      at += best[1].length;
      continue;
    }
    const op = OPS.find((o) => s.startsWith(o, at));
    if (!op) return at;
    if (op === '(') open.push(out.length);
    if (op === ')') { const o = open.pop(); if (o !== undefined) out[o]!.match = out.length; }
    out.push({ kind: 'op', text: op, at, end: at + op.length });
    at += op.length;
  }
  out.push({ kind: 'end', text: 'the end', at: s.length, end: s.length });
  return out;
}

// ---- what a clause lets through the kernel ----

/** null is "all": this dimension does not constrain. */
interface Part { ports: Set<number> | null; nets: Set<string> | null; exact: boolean; why?: string }

const all = (why: string): Part => ({ ports: null, nets: null, exact: false, why });
const isAll = (p: Part) => p.ports === null && p.nets === null;
const quote = (text: string) => `\`${text}\``;

function union<T>(a: Set<T> | null, b: Set<T> | null): Set<T> | null | 'over' {
  if (!a || !b) return null;
  const u = new Set([...a, ...b]);
  return u.size > TC_FILTER_MAX ? 'over' : u;
}

function same<T>(a: Set<T> | null, b: Set<T> | null): boolean {
  return a === null || b === null ? a === b : a.size === b.size && [...a].every((x) => b.has(x));
}

function orParts(a: Part, b: Part, text: string): Part {
  const ports = union(a.ports, b.ports), nets = union(a.nets, b.nets);
  const over = ports === 'over' || nets === 'over';
  const p: Part = {
    ports: ports === 'over' ? null : ports,
    nets: nets === 'over' ? null : nets,
    // (P1 ∧ N1) ∨ (P2 ∧ N2) is (P1 ∨ P2) ∧ (N1 ∨ N2) when one side of it is the same on both.
    exact: a.exact && b.exact && !over && (same(a.ports, b.ports) || same(a.nets, b.nets)),
  };
  if (isAll(p)) {
    p.why = isAll(a) ? a.why : isAll(b) ? b.why : over
      ? `${quote(text)} lists more than ${TC_FILTER_MAX} ports or prefixes, the kernel filter's limit`
      : `${quote(text)} joins ports and addresses with \`or\`, and the kernel filter requires a listed port and a listed address`;
  }
  return p;
}

/** The smaller of two sets (a frame in both is in each); either when one is "all". */
function pick<T>(a: Set<T> | null, b: Set<T> | null): Set<T> | null {
  if (!a) return b;
  if (!b) return a;
  return b.size < a.size ? b : a;
}

function andParts(a: Part, b: Part): Part {
  const p: Part = {
    ports: pick(a.ports, b.ports),
    nets: pick(a.nets, b.nets),
    exact: a.exact && b.exact && (!a.ports || !b.ports || same(a.ports, b.ports)) && (!a.nets || !b.nets || same(a.nets, b.nets)),
  };
  if (isAll(p)) p.why = a.why ?? b.why;
  return p;
}

// ---- numbers and addresses as libpcap reads them ----

/** libpcap's NUM: 0x hex, a leading 0 octal, else decimal; undefined when it would refuse it. */
function pcapNumber(text: string): number | undefined {
  const n = /^0[xX]/.test(text) ? parseInt(text.slice(2), 16) : /^0[0-7]*$/.test(text) ? parseInt(text, 8)
    : /^[1-9][0-9]*$/.test(text) ? Number(text) : NaN;
  return Number.isFinite(n) && n <= 0xffffffff ? n : undefined;
}

/** A dotted IPv4 form of 1 to 4 parts (__pcap_atoin): its value and bit length. */
function dotted(text: string): { v: number; bits: number } | undefined {
  const parts = text.split('.').map((p) => (/^[0-9]{1,3}$/.test(p) ? Number(p) : NaN));
  if (parts.some((p) => !(p <= 255))) return undefined;
  return { v: parts.reduce((v, p) => v * 256 + p, 0), bits: 8 * parts.length };
}

const v4text = (v: number, len: number) => `${[24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).join('.')}/${len}`;

/** RFC 5952 text: lower-case hex, the longest run of two or more zero words as "::", IPv4-mapped dotted (§5). */
function v6text(b: Buffer, len: number): string {
  if (b.subarray(0, 10).every((x) => x === 0) && b.readUInt16BE(10) === 0xffff) return `::ffff:${[...b.subarray(12)].join('.')}/${len}`;
  const w = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((x) => x.toString(16)).join(':');
  const text = best < 0 ? hex(w) : `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
  return `${text}/${len}`;
}

function v6HostBitsSet(b: Buffer, len: number): boolean {
  for (let bit = len; bit < 128; bit++) if ((b[bit >> 3]! >> (7 - (bit & 7))) & 1) return true;
  return false;
}

// ---- the parser (libpcap's grammar.y, the parts that matter here) ----

/** What a primitive's keywords said; later bare values reuse them (`port 80 or 443`, pcap-filter(7)). */
interface Qual { proto?: string; dir?: string; type?: string }
interface Parsed { p: Part; q: Qual | null }

class Problem extends Error {}

class Parser {
  private i = 0;
  private depth = 0;

  constructor(private readonly src: string, private readonly t: Tok[]) {}

  run(): Part {
    const r = this.expr(null);
    if (this.peek().kind !== 'end') this.fail('expected `and`, `or` or the end');
    return r.p;
  }

  private peek(k = 0): Tok { return this.t[Math.min(this.i + k, this.t.length - 1)]!; }
  private is(text: string, k = 0): boolean { const t = this.peek(k); return (t.kind === 'op' || t.kind === 'kw') && t.text === text; }
  private isAnd(): boolean { return this.is('and') || this.is('&&'); }
  private isOr(): boolean { return this.is('or') || this.is('||'); }
  private isNot(): boolean { return this.is('not') || this.is('!'); }
  private isValue(k = 0): boolean { return ['num', 'hid', 'hid6', 'eid', 'id'].includes(this.peek(k).kind); }
  private textFrom(start: number): string { return this.src.slice(this.t[start]!.at, this.t[this.i - 1]?.end ?? this.src.length); }

  private fail(what: string): never {
    const t = this.peek();
    throw new Problem(`${what} at ${t.kind === 'end' ? 'the end' : `"${t.text}" (offset ${t.at})`}`);
  }

  private expect(text: string): void {
    if (!this.is(text)) this.fail(`expected "${text}"`);
    this.i++;
  }

  private nest<T>(f: () => T): T {
    if (++this.depth > MAX_DEPTH) this.fail(`nested more than ${MAX_DEPTH} deep`);
    try { return f(); } finally { this.depth--; }
  }

  /** expr: term, then `and`/`or` of equal precedence from left to right (pcap-filter(7)). */
  private expr(q: Qual | null): Parsed {
    const start = this.i;
    let r = this.term(q);
    while (this.isAnd() || this.isOr()) {
      const and = this.isAnd();
      this.i++;
      const right = this.idOrTerm(r.q);
      r = { p: and ? andParts(r.p, right.p) : orParts(r.p, right.p, this.textFrom(start)), q: right.q };
    }
    return r;
  }

  /** After `and`/`or`: a bare value with the last qualifiers (grammar.y `expr and id`), else a term. */
  private idOrTerm(q: Qual | null): Parsed {
    const save = this.i;
    if (q) {
      try {
        const p = this.id(q);
        if (this.isAnd() || this.isOr() || this.is(')') || this.peek().kind === 'end') return { p, q };
      } catch (e) {
        if (!(e instanceof Problem)) throw e;
      }
      this.i = save;
    }
    return this.term(q);
  }

  private term(q: Qual | null): Parsed {
    return this.nest(() => {
      const start = this.i, t = this.peek();
      if (this.isNot()) {
        this.i++;
        const inner = this.term(q);
        return { p: all(`${quote(this.textFrom(start))} is a negation, and the kernel filter can only list what to keep`), q: inner.q };
      }
      if (t.kind === 'op' && t.text === '(') {
        if (t.match === undefined) this.fail('unbalanced "("');
        const after = this.t[t.match + 1]!;
        // `(tcp[13] & 2) != 0` is arithmetic; `(port 80) or …` is a group.
        if (after.kind === 'op' && (BINOPS.has(after.text) || RELOPS.has(after.text))) return { p: this.relation(), q: null };
        this.i++;
        const r = this.expr(q);
        this.expect(')');
        return { p: r.p, q };
      }
      if (t.kind === 'kw' && (PNAMES.has(t.text) || DIRS.has(t.text) || AQUALS.has(t.text))) return this.primitive();
      if (t.kind === 'kw' && OTHER.has(t.text)) return { p: this.other(), q: null };
      return { p: this.relation(), q: null };
    });
  }

  /** [proto] [dir] [type] value, or a bare protocol name. */
  private primitive(): Parsed {
    const start = this.i;
    const q: Qual = {};
    if (PNAMES.has(this.peek().text)) {
      q.proto = this.peek().text;
      if (this.is('[', 1)) return { p: this.relation(), q: null };
      this.i++;
      const n = this.peek();
      if (n.kind === 'kw' && (n.text === 'broadcast' || n.text === 'multicast')) {
        this.i++;
        return { p: all(`${quote(this.textFrom(start))} is not a port or address`), q: null };
      }
      if (!(n.kind === 'kw' && (DIRS.has(n.text) || AQUALS.has(n.text)))) {
        return { p: all(`${quote(q.proto)} names a protocol, which the kernel filter cannot test`), q: null };
      }
    }
    if (this.peek().kind === 'kw' && DIRS.has(this.peek().text)) {
      q.dir = this.peek().text;
      this.i++;
      const other = q.dir === 'src' ? 'dst' : q.dir === 'dst' ? 'src' : '';
      if (other && (this.isAnd() || this.isOr()) && this.is(other, 1)) {
        q.dir = this.isOr() ? 'either' : 'both';
        this.i += 2;
      }
    }
    if (this.peek().kind === 'kw' && AQUALS.has(this.peek().text)) {
      q.type = this.peek().text;
      this.i++;
    }
    if (q.type === 'proto' || q.type === 'protochain' || q.type === 'gateway') {
      if (!this.isValue()) this.fail(`expected a value after "${q.type}"`);
      this.i++;
      return { p: all(`${quote(this.textFrom(start))} is not a port or address`), q };
    }
    return { p: this.id(q), q };
  }

  /** grammar.y `id`: a value, `not` a value, or a parenthesised list of values, all with `q`. */
  private id(q: Qual): Part {
    return this.nest(() => {
      const start = this.i;
      if (this.isNot()) {
        this.i++;
        this.id(q);
        return all(`${quote(this.textFrom(start))} is a negation, and the kernel filter can only list what to keep`);
      }
      if (this.is('(')) {
        this.i++;
        let p = this.id(q);
        while (this.isAnd() || this.isOr()) {
          const and = this.isAnd();
          this.i++;
          const r = this.id(q);
          p = and ? andParts(p, r) : orParts(p, r, this.textFrom(start + 1));
        }
        this.expect(')');
        return p;
      }
      if (!this.isValue()) this.fail('expected a value');
      const tok = this.peek();
      this.i++;
      return q.type === 'port' || q.type === 'portrange' ? this.portLeaf(q, tok, start) : this.addrLeaf(q, tok, start);
    });
  }

  private portLeaf(q: Qual, tok: Tok, start: number): Part {
    const text = this.textFrom(start);
    const what = `${q.proto ? `${q.proto} ` : ''}${q.dir ? `${q.dir} ` : ''}${q.type} ${text}`;
    if (q.proto && !['ip', 'ip6', 'tcp', 'udp', 'sctp'].includes(q.proto)) return all(`${quote(what)} is not a TCP/UDP/SCTP port`);
    if (q.dir && !['src', 'dst', 'either', 'both'].includes(q.dir)) return all(`${quote(what)} is not a TCP/UDP/SCTP port`);
    let lo: number | undefined, hi: number | undefined;
    if (tok.kind === 'num') lo = hi = pcapNumber(tok.text);
    const range = q.type === 'portrange' && tok.kind === 'id' ? /^([0-9]+)-([0-9]+)$/.exec(tok.text) : null;
    if (range) [lo, hi] = [Number(range[1]), Number(range[2])].sort((a, b) => a - b);
    if (lo === undefined || hi === undefined) {
      return all(`${quote(what)} ${tok.kind === 'id' ? 'names a service, not a port number' : 'is not a port number'}`);
    }
    if (lo < 1 || hi > 65535) return all(`${quote(what)} is outside the ports 1..65535 the kernel filter can list`);
    if (hi - lo + 1 > TC_FILTER_MAX) return all(`${quote(what)} spans more than ${TC_FILTER_MAX} ports, the kernel filter's limit`);
    const ports = new Set<number>();
    for (let p = lo; p <= hi; p++) ports.add(p);
    // Either end of TCP, UDP or SCTP, as the kernel; `tcp port` or `src port` keeps less.
    return { ports, nets: null, exact: !q.proto && (!q.dir || q.dir === 'either') };
  }

  private addrLeaf(q: Qual, tok: Tok, start: number): Part {
    let slash: number | undefined, mask: Tok | undefined;
    if ((tok.kind === 'hid' || tok.kind === 'hid6') && this.is('/')) {
      this.i++;
      if (this.peek().kind !== 'num') this.fail('expected a prefix length after "/"');
      slash = pcapNumber(this.peek().text) ?? Infinity;
      this.i++;
    } else if (tok.kind === 'hid' && this.is('mask')) {
      this.i++;
      if (this.peek().kind !== 'hid') this.fail('expected a dotted mask after "mask"');
      mask = this.peek();
      this.i++;
    }
    const text = this.textFrom(start);
    const what = quote(`${q.proto ? `${q.proto} ` : ''}${q.dir ? `${q.dir} ` : ''}${q.type ? `${q.type} ` : ''}${text}`);
    const family = tok.kind === 'hid6' ? 'ip6' : tok.kind === 'hid' || tok.kind === 'num' ? 'ip' : undefined;
    if (!family) return all(`${what} ${tok.kind === 'eid' ? 'is an Ethernet address' : 'needs a name lookup'}, not an IP address or prefix`);
    if ((q.proto && q.proto !== family) || (q.dir && !['src', 'dst', 'either', 'both'].includes(q.dir)) || (q.type && q.type !== 'host' && q.type !== 'net')) {
      return all(`${what} is not an IP address or prefix`);
    }
    const exactDir = !q.dir || q.dir === 'either';
    let net: string | undefined, contiguous = true;
    if (family === 'ip6') {
      const b = ipBytes16(tok.text), len = slash ?? 128;
      if (b && len <= 128 && !v6HostBitsSet(b, len)) net = v6text(b, len);
    } else if (tok.kind === 'num') {
      // gencode.c gen_ncode: a plain number is an address; after `net` a short one is promoted (`net 10` is 10/8).
      let v = pcapNumber(tok.text), len = 32;
      while (q.type === 'net' && v && v < 0x1000000) { v *= 256; len -= 8; }
      if (v !== undefined) net = v4text(v, len);
    } else {
      // A short dotted form is the start of an address: `net 10.1` and `host 10.1` are 10.1.0.0/16.
      const a = dotted(tok.text), m = mask ? dotted(mask.text) : undefined;
      if (a && (!mask || m)) {
        const v = a.v * 2 ** (32 - a.bits);
        let len = slash ?? a.bits;
        if (m) {
          const mv = m.v * 2 ** (32 - m.bits);
          len = 0;
          while (len < 32 && Math.floor(mv / 2 ** (31 - len)) % 2 === 1) len++;
          contiguous = mv === 2 ** 32 - 2 ** (32 - len);
          // libpcap refuses address bits outside the mask
          if ([...Array(32).keys()].some((b) => Math.floor(v / 2 ** b) % 2 === 1 && Math.floor(mv / 2 ** b) % 2 === 0)) len = -1;
        }
        if (len >= 0 && len <= 32 && v % 2 ** (32 - len) === 0) net = v4text(v, len);
      }
    }
    if (!net) return all(`${what} is not an address or prefix the kernel filter can list`);
    return { ports: null, nets: new Set([net]), exact: exactDir && contiguous };
  }

  /** `a relop b` over packet bytes and numbers: skipped, it constrains nothing here. */
  private relation(): Part {
    const start = this.i;
    this.arith();
    if (!(this.peek().kind === 'op' && RELOPS.has(this.peek().text))) this.fail('expected a primitive or a comparison');
    this.i++;
    this.arith();
    return all(`${quote(this.textFrom(start))} is not a port or address`);
  }

  private arith(): void {
    this.unary();
    while (this.peek().kind === 'op' && BINOPS.has(this.peek().text)) {
      this.i++;
      this.unary();
    }
  }

  private unary(): void {
    this.nest(() => {
      const t = this.peek();
      if (this.is('-')) {
        this.i++;
        this.unary();
      } else if (this.is('(')) {
        this.i++;
        this.arith();
        this.expect(')');
      } else if ((t.kind === 'kw' || t.kind === 'id') && this.is('[', 1)) {
        this.i += 2;
        this.arith();
        if (this.is(':')) {
          this.i++;
          if (this.peek().kind !== 'num') this.fail('expected a size after ":"');
          this.i++;
        }
        this.expect(']');
      } else if (t.kind === 'num' || t.kind === 'id' || this.is('len') || this.is('length')) {
        // ids here are libpcap's named constants (tcpflags, tcp-syn, icmp-echo …)
        this.i++;
      } else {
        this.fail('expected a number or a packet field');
      }
    });
  }

  /** Keywords that are neither port nor address (`less 100`, `inbound`, `ifindex 3` …), with their value. */
  private other(): Part {
    const start = this.i;
    while (this.peek().kind === 'kw' && OTHER.has(this.peek().text)) {
      this.i++;
      if (this.isValue()) this.i++;
    }
    return all(`${quote(this.textFrom(start))} is not a port or address`);
  }
}

const EVERYTHING_UP = 'every frame goes up to the userspace filter';

/**
 * The kernel filter for `expr` (see the top of this file), whether it is exactly the expression,
 * and why nothing could be listed when nothing was. Never throws: an expression this cannot read
 * keeps every frame, and libpcap refuses a bad one with its own words where it is compiled.
 */
export function kernelPrefilter(expr: string | undefined): KernelPrefilter {
  const everything = (why: string): KernelPrefilter => ({ filter: {}, exact: false, why: `${why}: ${EVERYTHING_UP}` });
  try {
    if (expr === undefined || expr.trim() === '') return { filter: {}, exact: true };
    if (expr.length > MAX_LENGTH) return everything(`the filter is longer than ${MAX_LENGTH} characters`);
    const toks = tokenize(expr);
    if (typeof toks === 'number') return everything(`the filter does not parse: "${expr[toks]}" at offset ${toks}`);
    const shift = toks.find((t) => SHIFTING.has(t.text));
    if (shift) return everything(`${quote(shift.text)} moves where the primitives after it read the frame, which the kernel filter does not follow`);
    const p = new Parser(expr, toks).run();
    if (isAll(p)) return everything(p.why ?? 'nothing in the filter is a port or address');
    const filter: TcFilter = {};
    if (p.ports) filter.ports = [...p.ports].sort((a, b) => a - b);
    if (p.nets) filter.nets = [...p.nets];
    return { filter, exact: p.exact };
  } catch (e) {
    if (e instanceof Problem) return everything(`the filter does not parse: ${e.message}`);
    return everything(`the filter could not be read (${(e as Error)?.message ?? String(e)})`);
  }
}
