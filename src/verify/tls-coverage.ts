import { countsText, endpoint, plural } from '../common/index.js';
import type { FlowRecord, Peer, TlsEndProcess, TlsFlow } from '../flows/index.js';
import type { ServiceNames } from './services.js';

/**
 * TLS coverage (issue 17, "Coverage, per workload or process"): what of a window's TLS could be
 * read. Computed from flow records alone, so it answers the same over a capture file, an agent and
 * the hub:
 * - plaintext flows: records neither decrypted (no `tls` marking) nor TLS handshakes;
 * - TLS connections on the wire: `tls` records (one per connection), with their SNIs;
 * - TLS connections decrypted: records marked `tls.via == "uprobe"`, counted by connectionId;
 * - TLS connections not decrypted: wire TLS connections with no decrypted twin (the same
 *   connection, matched by its 4-tuple either way round and its time), and why, as a stable code.
 *
 * Per server: the server's workload (namespace/workload) when identities name it, else its ip:port.
 * Per process where known: the pid and comm the uprobe marking names, and for a connection not
 * decrypted the processes at its ends (a wire record's `processes`, from the agent's connect and
 * accept tracepoints) with their TLS library and why it was not read.
 */

/** Why a TLS connection seen on the wire was not decrypted. Codes are stable; the words may improve. */
export const TLS_NOT_DECRYPTED = {
  /** The flows come from a capture file (or a local packet capture): packets only, no uprobes. */
  'no-uprobes-capture-file': 'no uprobes: the capture file holds no decrypted plaintext (only an agent running --tls writes it into its pcap exports), so its TLS is ciphertext only',
  /** No record of the window was decrypted: the source ran no TLS uprobes, as far as the records tell. */
  'no-uprobes': 'no uprobes: no record of the window was decrypted, so the source ran none (an agent without --tls, or --tls auto that could not attach: its log says why)',
  /** Uprobes ran (other connections were decrypted), but not on this connection's ends. */
  'not-probed': 'its client and server were not probed, and their processes are not known (another host, or no owner record): an unsupported library (rustls, BoringSSL, Java JSSE) or a stripped binary',
  /** An end's process uses a TLS library the uprobes do not read: named in `libraries`. */
  'unsupported-library': 'an end\'s process uses a TLS library the uprobes do not read (Java JSSE, GnuTLS, NSS, rustls, BoringSSL, a Go before 1.17): named with the process',
  /** An end's library was recognised (Go crypto/tls, a libssl) but the functions to probe could not be found in it. */
  'no-symbols': 'an end\'s TLS library was recognised, but the functions to probe could not be found in it (a Go binary stripped of .symtab and .gopclntab, a libssl without SSL_write in its symbols)',
  /** An end is a stripped binary mapping no known TLS library: what it links in statically cannot be named. */
  'stripped-binary': 'an end is a stripped binary that maps no TLS library: one linked into it statically cannot be found without symbols',
  /** An end uses a probed library, yet this connection gave no plaintext. */
  'probed-no-plaintext': 'an end uses a probed library (OpenSSL, Go crypto/tls), yet this connection gave no plaintext: the process was attached after the connection began, reads through BIO_f_ssl (openssl s_server), or the plaintext was lost (the agent\'s counters say)',
} as const;

export type TlsNotDecryptedCode = keyof typeof TLS_NOT_DECRYPTED;

/** What the source is, when its caller knows: a capture file has no uprobes whatever the records say. */
/** What the flows' source says of probing: a capture file (never), an agent with uprobes attached, or unknown. */
export type TlsProbeSource = 'capture-file' | 'uprobes' | 'unknown';

export interface TlsReasonEntry {
  code: TlsNotDecryptedCode;
  /** The code in words. */
  text: string;
  connections: number;
  /** The TLS libraries of the ends this code is about ("Java JSSE", "GnuTLS"), when the processes are known. */
  libraries?: string[];
}

/** A process at an end of TLS connections not decrypted, and why (from the wire records' `processes`). */
export interface TlsUnreadProcess {
  /** Which end of the connections it held. */
  end: 'client' | 'server';
  pid: number;
  comm?: string;
  /** openssl, go, java, gnutls, nss, boringssl, rustls, unknown. */
  library: string;
  /** The library for people: "Java JSSE". */
  libraryName: string;
  probed: boolean;
  /** Why its TLS was not read (unsupported-library, stripped-binary, no-symbols, not-probed). */
  reason?: string;
  detail?: string;
  /** Its connections not decrypted. */
  connections: number;
}

/** At most this many unread processes are listed, per server and in all. */
export const MAX_TLS_UNREAD_PROCESSES = 20;

/** A library's name for people (capture/owners names the same ones). */
const LIBRARY_NAMES: Record<string, string> = {
  openssl: 'OpenSSL', go: 'Go crypto/tls', java: 'Java JSSE', gnutls: 'GnuTLS', nss: 'NSS', boringssl: 'BoringSSL', rustls: 'rustls',
};
export function libraryName(library: string): string {
  return LIBRARY_NAMES[library] ?? library;
}

export interface TlsProcessEntry {
  pid?: number;
  comm?: string;
  library: string;
  /** Connections of this server decrypted in this process. */
  connections: number;
}

export interface TlsServerCoverage {
  /** "namespace/workload" (or the workload alone without a namespace), else "ip:port". */
  server: string;
  namespace?: string;
  workload?: string;
  /** Flows to it read in the clear (neither decrypted nor a TLS handshake). */
  plaintextFlows: number;
  /** TLS connections to it seen on the wire, and the SNIs their ClientHellos named (sorted). */
  wire: { connections: number; snis: string[] };
  /** TLS connections to it decrypted (uprobes), whether or not the wire showed them. */
  decrypted: { connections: number };
  /** Wire TLS connections to it with no decrypted twin, by why. */
  notDecrypted: {
    connections: number; byReason: Partial<Record<TlsNotDecryptedCode, number>>;
    /** The processes at the ends of those connections, when the agent saw them connect or accept, most connections first. */
    processes?: TlsUnreadProcess[];
  };
  /** The probed processes that gave its decrypted connections, most connections first. */
  processes?: TlsProcessEntry[];
  /**
   * Its TLS clients (workload, else ip: a client's port is ephemeral), most connections first, at
   * most MAX_TLS_CLIENTS_LISTED: which caller's library was not probed.
   */
  clients?: TlsClientEntry[];
}

export interface TlsClientEntry {
  /** "namespace/workload", else the ip. */
  client: string;
  /** Its TLS connections to this server seen on the wire or decrypted, then those decrypted and not. */
  connections: number;
  decrypted: number;
  notDecrypted: number;
  /** The TLS libraries of its processes in the connections not decrypted ("Java JSSE"), when known. */
  libraries?: string[];
}

export interface TlsCoverage {
  since?: number;
  until?: number;
  /**
   * Were uprobes seen at work: "capture-file" (none possible), "seen" (a decrypted record),
   * "attached" (the agent says its probes are on, though nothing here was decrypted), "none-seen".
   */
  uprobes: 'capture-file' | 'seen' | 'attached' | 'none-seen';
  plaintextFlows: number;
  wire: { connections: number };
  decrypted: { connections: number };
  notDecrypted: {
    connections: number; reasons: TlsReasonEntry[];
    /** Every process at an end of a connection not decrypted (at most MAX_TLS_UNREAD_PROCESSES), most connections first. */
    processes?: TlsUnreadProcess[];
  };
  /** Servers with TLS seen (wire or decrypted), most connections first, at most MAX_TLS_SERVERS_LISTED. */
  servers: TlsServerCoverage[];
  /** Servers with TLS not listed. */
  serversOmitted: number;
}

export const MAX_TLS_SERVERS_LISTED = 50;
export const MAX_TLS_CLIENTS_LISTED = 10;

/** One wire TLS connection and whether it was read. */
export interface TlsConnectionFate {
  record: TlsFlow;
  /** The connectionId of its decrypted twin, when there is one. */
  decryptedAs?: string;
  reason?: TlsNotDecryptedCode;
  /** The ends the reason is about, when the record names its processes. */
  blamed?: { end: 'client' | 'server'; process: TlsEndProcess }[];
}

/** How well an end's reason explains a connection not decrypted: the most specific first. */
const END_REASON_ORDER: TlsNotDecryptedCode[] = ['unsupported-library', 'no-symbols', 'stripped-binary', 'not-probed'];

/**
 * Why a wire connection with no decrypted twin was not read, from its ends' processes: a probed end
 * that gave nothing says so (probed-no-plaintext); else the most specific reason of its ends.
 * Undefined when the record names no process.
 */
function reasonFromEnds(p: TlsFlow['processes']): Pick<TlsConnectionFate, 'reason' | 'blamed'> | undefined {
  const ends = (['client', 'server'] as const).flatMap((end) => (p?.[end] ? [{ end, process: p[end] }] : []));
  if (!ends.length) return undefined;
  const probed = ends.filter((e) => e.process.probed);
  if (probed.length) return { reason: 'probed-no-plaintext', blamed: probed };
  for (const code of END_REASON_ORDER) {
    const hit = ends.filter((e) => (e.process.reason ?? 'not-probed') === code);
    if (hit.length) return { reason: code, blamed: hit };
  }
  return { reason: 'not-probed', blamed: ends };
}

/** How far a decrypted connection's first exchange may lie outside its wire twin's span, in seconds (clocks, buffering). */
const MATCH_SLACK = 1;

/** The 4-tuple either way round: "a|b" with the two endpoints sorted. */
function tupleKey(a: Peer, b: Peer): string {
  const x = endpoint(a), y = endpoint(b);
  return x < y ? `${x}|${y}` : `${y}|${x}`;
}

interface Decrypted { id: string; start: number; end: number; tuple: string; src: Peer; dst: Peer; library: string; pid?: number; comm?: string; matched?: boolean }

/** The connections decrypted (records marked by uprobes), by connectionId. */
function decryptedConnections(flows: readonly FlowRecord[]): Map<string, Decrypted> {
  const out = new Map<string, Decrypted>();
  for (const f of flows) {
    if (f.tls?.via !== 'uprobe') continue;
    const d = out.get(f.connectionId);
    if (d) { d.start = Math.min(d.start, f.start); d.end = Math.max(d.end, f.end); continue; }
    out.set(f.connectionId, {
      id: f.connectionId, start: f.start, end: f.end, tuple: tupleKey(f.src, f.dst), src: f.src, dst: f.dst, library: f.tls.library,
      ...(f.tls.pid !== undefined ? { pid: f.tls.pid } : {}), ...(f.tls.comm !== undefined ? { comm: f.tls.comm } : {}),
    });
  }
  return out;
}

/**
 * Each wire TLS connection of `flows` with its decrypted twin or the reason it has none, and the
 * decrypted connections. A twin has the same 4-tuple (either way round: the probe sees the socket
 * from whichever end it sat at) and its first exchange within the wire connection's span (± 1 s);
 * of several, the nearest in time, each used once.
 */
export function tlsConnections(flows: readonly FlowRecord[], source: TlsProbeSource = 'unknown'): { wire: TlsConnectionFate[]; decrypted: Map<string, Decrypted> } {
  const decrypted = decryptedConnections(flows);
  const byTuple = new Map<string, Decrypted[]>();
  for (const d of decrypted.values()) {
    const l = byTuple.get(d.tuple);
    if (l) l.push(d); else byTuple.set(d.tuple, [d]);
  }
  // An agent that says its probes are attached explains an undecrypted connection by its ends, even when
  // nothing in the window was decrypted (every peer used an unprobed library).
  const noTwin: TlsNotDecryptedCode = source === 'capture-file' && decrypted.size === 0 ? 'no-uprobes-capture-file'
    : decrypted.size === 0 && source !== 'uprobes' ? 'no-uprobes' : 'not-probed';
  const wire = flows.filter((f): f is TlsFlow => f.protocol === 'tls' && f.tls === undefined)
    .sort((a, b) => a.start - b.start || a.id.localeCompare(b.id))
    .map((record): TlsConnectionFate => {
      const twin = (byTuple.get(tupleKey(record.src, record.dst)) ?? [])
        .filter((d) => !d.matched && d.start >= record.start - MATCH_SLACK && d.start <= record.end + MATCH_SLACK)
        .sort((a, b) => Math.abs(a.start - record.start) - Math.abs(b.start - record.start))[0];
      if (!twin) return { record, ...(reasonFromEnds(record.processes) ?? { reason: noTwin }) };
      twin.matched = true;
      return { record, decryptedAs: twin.id };
    });
  return { wire, decrypted };
}

/** The client a flow's src names: its workload, else its ip. */
function clientOf(p: Peer): string {
  const workload = p.workload ?? p.name ?? p.service;
  return workload === undefined ? p.ip : p.namespace ? `${p.namespace}/${workload}` : workload;
}

/** The server a flow's dst names: its workload when an identity names one, else its address. */
function serverOf(p: Peer): { key: string; namespace?: string; workload?: string } {
  const workload = p.workload ?? p.name ?? p.service;
  if (workload === undefined) return { key: endpoint(p) };
  return { key: p.namespace ? `${p.namespace}/${workload}` : workload, ...(p.namespace ? { namespace: p.namespace } : {}), workload };
}

/**
 * The TLS coverage of `flows` (already narrowed to the window; `since`/`until` are echoed).
 * `source: "capture-file"` when the caller knows the flows come from packets only.
 */
export function tlsCoverageOf(flows: readonly FlowRecord[], o: { since?: number; until?: number; source?: TlsProbeSource } = {}): TlsCoverage {
  const { wire, decrypted } = tlsConnections(flows, o.source);
  const servers = new Map<string, TlsServerCoverage & { snis: Set<string>; procs: Map<string, TlsProcessEntry>; callers: Map<string, TlsClientEntry & { libs?: Set<string> }>; unread: Map<string, TlsUnreadProcess> }>();
  const caller = (e: { callers: Map<string, TlsClientEntry & { libs?: Set<string> }> }, p: Peer): TlsClientEntry & { libs?: Set<string> } => {
    const k = clientOf(p);
    let c = e.callers.get(k);
    if (!c) e.callers.set(k, (c = { client: k, connections: 0, decrypted: 0, notDecrypted: 0 }));
    c.connections++;
    return c;
  };
  const allUnread = new Map<string, TlsUnreadProcess>();
  const reasonLibs = new Map<TlsNotDecryptedCode, Set<string>>();
  const unread = (m: Map<string, TlsUnreadProcess>, end: 'client' | 'server', p: TlsEndProcess) => {
    const k = `${end}\0${p.pid}\0${p.comm ?? ''}\0${p.library}`;
    const u = m.get(k);
    if (u) { u.connections++; return; }
    m.set(k, {
      end, pid: p.pid, ...(p.comm !== undefined ? { comm: p.comm } : {}), library: p.library, libraryName: libraryName(p.library), probed: p.probed,
      ...(p.reason !== undefined ? { reason: p.reason } : {}), ...(p.detail !== undefined ? { detail: p.detail } : {}), connections: 1,
    });
  };
  const entry = (p: Peer) => {
    const s = serverOf(p);
    let e = servers.get(s.key);
    if (!e) {
      servers.set(s.key, (e = {
        server: s.key, ...(s.namespace !== undefined ? { namespace: s.namespace } : {}), ...(s.workload !== undefined ? { workload: s.workload } : {}),
        plaintextFlows: 0, wire: { connections: 0, snis: [] }, decrypted: { connections: 0 }, notDecrypted: { connections: 0, byReason: {} },
        snis: new Set(), procs: new Map(), callers: new Map(), unread: new Map(),
      }));
    }
    return e;
  };
  let plaintextFlows = 0;
  // Plaintext per server only where that server has TLS too: the coverage lists TLS servers.
  const plainByServer = new Map<string, number>();
  for (const f of flows) {
    if (f.tls !== undefined || f.protocol === 'tls') continue;
    plaintextFlows++;
    const k = serverOf(f.dst).key;
    plainByServer.set(k, (plainByServer.get(k) ?? 0) + 1);
  }
  const byReason = new Map<TlsNotDecryptedCode, number>();
  for (const w of wire) {
    const e = entry(w.record.dst);
    e.wire.connections++;
    if (w.record.request?.sni !== undefined) e.snis.add(w.record.request.sni);
    const c = caller(e, w.record.src);
    if (w.decryptedAs !== undefined) c.decrypted++; else c.notDecrypted++;
    if (w.reason) {
      e.notDecrypted.connections++;
      e.notDecrypted.byReason[w.reason] = (e.notDecrypted.byReason[w.reason] ?? 0) + 1;
      byReason.set(w.reason, (byReason.get(w.reason) ?? 0) + 1);
      for (const end of ['client', 'server'] as const) {
        const p = w.record.processes?.[end];
        if (!p) continue;
        unread(e.unread, end, p);
        unread(allUnread, end, p);
        if (end === 'client' && p.library !== 'unknown') (c.libs ??= new Set()).add(libraryName(p.library));
      }
      for (const b of w.blamed ?? []) {
        if (b.process.library === 'unknown') continue;
        let l = reasonLibs.get(w.reason);
        if (!l) reasonLibs.set(w.reason, (l = new Set()));
        l.add(libraryName(b.process.library));
      }
    }
  }
  // A decrypted connection with a wire twin is filed under the twin's server: the handshake tells
  // client from server, a probe's socket may have been seen from the server's end.
  const twinOf = new Map(wire.filter((w) => w.decryptedAs !== undefined).map((w) => [w.decryptedAs!, w.record]));
  for (const d of decrypted.values()) {
    const twin = twinOf.get(d.id);
    const e = entry(twin?.dst ?? d.dst);
    e.decrypted.connections++;
    // A twin's client was counted with the wire connection.
    if (!twin) caller(e, d.src).decrypted++;
    const pk = `${d.pid ?? ''}\0${d.comm ?? ''}\0${d.library}`;
    const p = e.procs.get(pk);
    if (p) p.connections++;
    else e.procs.set(pk, { ...(d.pid !== undefined ? { pid: d.pid } : {}), ...(d.comm !== undefined ? { comm: d.comm } : {}), library: d.library, connections: 1 });
  }
  const list = [...servers.values()].map(({ snis, procs, callers, unread: un, ...e }): TlsServerCoverage => {
    e.plaintextFlows = plainByServer.get(e.server) ?? 0;
    e.wire.snis = [...snis].sort();
    if (un.size) e.notDecrypted.processes = unreadList(un);
    const ps = [...procs.values()].sort((a, b) => b.connections - a.connections || (a.pid ?? 0) - (b.pid ?? 0));
    const cs = [...callers.values()].sort((a, b) => b.connections - a.connections || a.client.localeCompare(b.client)).slice(0, MAX_TLS_CLIENTS_LISTED)
      .map(({ libs, ...c }): TlsClientEntry => (libs?.size ? { ...c, libraries: [...libs].sort() } : c));
    return { ...e, ...(ps.length ? { processes: ps } : {}), ...(cs.length ? { clients: cs } : {}) };
  }).sort((a, b) => (b.wire.connections + b.decrypted.connections) - (a.wire.connections + a.decrypted.connections) || a.server.localeCompare(b.server));
  const notDecrypted = [...byReason].reduce((n, [, c]) => n + c, 0);
  return {
    ...(o.since !== undefined ? { since: o.since } : {}), ...(o.until !== undefined ? { until: o.until } : {}),
    // A wire record naming its ends' processes came from an agent running --tls (it watches owners only then).
    uprobes: decrypted.size > 0 ? 'seen' : o.source === 'capture-file' ? 'capture-file'
      : o.source === 'uprobes' || wire.some((w) => w.record.processes) ? 'attached' : 'none-seen',
    plaintextFlows,
    wire: { connections: wire.length },
    decrypted: { connections: decrypted.size },
    notDecrypted: {
      connections: notDecrypted,
      reasons: [...byReason].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([code, connections]) => {
        const libs = reasonLibs.get(code);
        return { code, text: TLS_NOT_DECRYPTED[code], connections, ...(libs?.size ? { libraries: [...libs].sort() } : {}) };
      }),
      ...(allUnread.size ? { processes: unreadList(allUnread) } : {}),
    },
    servers: list.slice(0, MAX_TLS_SERVERS_LISTED),
    serversOmitted: Math.max(0, list.length - MAX_TLS_SERVERS_LISTED),
  };
}

function unreadList(m: Map<string, TlsUnreadProcess>): TlsUnreadProcess[] {
  return [...m.values()].sort((a, b) => b.connections - a.connections || a.pid - b.pid || a.end.localeCompare(b.end)).slice(0, MAX_TLS_UNREAD_PROCESSES);
}

/** Does the coverage say anything about TLS (a connection on the wire or decrypted)? */
export function hasTls(c: TlsCoverage): boolean {
  return c.wire.connections > 0 || c.decrypted.connections > 0;
}

/**
 * Why a pass cannot stand on TLS: wire TLS connections to services the spec names had no decrypted
 * twin, so their content was not judged. Undefined when there are none. `skip` answers true for a
 * server already said to be not decoded (a capture file's undecoded coverage), so it is said once.
 */
export function namedNotDecrypted(fates: readonly TlsConnectionFate[], named: readonly string[], names: ServiceNames, skip?: (p: Peer) => boolean): { text: string; peers: Peer[] } | undefined {
  const hits = new Map<string, { peer: Peer; sni: Set<string>; reasons: Map<TlsNotDecryptedCode, number>; who: Set<string> }>();
  for (const w of fates) {
    if (!w.reason) continue;
    const p = w.record.dst;
    if (!named.some((n) => names.matches(p, n)) || skip?.(p)) continue;
    const k = endpoint(p);
    let h = hits.get(k);
    if (!h) hits.set(k, (h = { peer: p, sni: new Set(), reasons: new Map(), who: new Set() }));
    if (w.record.request?.sni) h.sni.add(w.record.request.sni);
    h.reasons.set(w.reason, (h.reasons.get(w.reason) ?? 0) + 1);
    for (const b of w.blamed ?? []) h.who.add(`${b.end} ${b.process.comm ?? 'pid'} pid ${b.process.pid}: ${libraryName(b.process.library)}`);
  }
  if (hits.size === 0) return undefined;
  const all = [...hits.values()];
  const total = all.reduce((n, h) => n + [...h.reasons.values()].reduce((m, c) => m + c, 0), 0);
  const codes = new Set(all.flatMap((h) => [...h.reasons.keys()]));
  const listed = all.slice(0, 3).map((h) => {
    const server = endpoint(h.peer);
    const name = names.name(h.peer);
    const counts: Record<string, number> = Object.fromEntries(h.reasons);
    const who = [...h.who].sort();
    return `${name !== server ? `${name} ${server}` : server}${h.sni.size ? ` (SNI ${[...h.sni].sort().join(', ')})` : ''}: ${countsText(counts, ' ×')}`
      + (who.length ? ` [${who.slice(0, 4).join('; ')}${who.length > 4 ? `; ${who.length - 4} more` : ''}]` : '');
  });
  const why = [...codes].sort().map((c) => `${c}: ${TLS_NOT_DECRYPTED[c]}`).join('; ');
  return {
    text: `${plural(total, 'TLS connection')} to services the spec names ${total === 1 ? 'was' : 'were'} seen but not decrypted, so not judged: ${listed.join(', ')}${all.length > 3 ? `, and ${plural(all.length - 3, 'more server')}` : ''} (${why})`,
    peers: all.map((h) => h.peer),
  };
}

/** The coverage in lines for people (MCP text, CLI). */
export function tlsCoverageLines(c: TlsCoverage): string[] {
  const head = `TLS: ${plural(c.wire.connections, 'connection')} on the wire, ${c.decrypted.connections} decrypted, ${c.notDecrypted.connections} not decrypted; ${plural(c.plaintextFlows, 'plaintext flow')}`;
  const lines = [head];
  for (const r of c.notDecrypted.reasons) lines.push(`  not decrypted ×${r.connections}: ${r.code}${r.libraries ? ` [${r.libraries.join(', ')}]` : ''} (${r.text})`);
  for (const p of c.notDecrypted.processes ?? []) lines.push(`  not decrypted ×${p.connections} at the ${p.end} ${unreadText(p)}`);
  for (const s of c.servers) lines.push(`  ${tlsServerText(s)}`);
  if (c.serversOmitted) lines.push(`  … ${plural(c.serversOmitted, 'more server')}`);
  return lines;
}

/** "java pid 4242 (Java JSSE, not probed: unsupported-library)". */
export function unreadText(p: TlsUnreadProcess): string {
  return `${p.comm ?? 'pid'} pid ${p.pid} (${p.libraryName}, ${p.probed ? 'probed' : `not probed${p.reason ? `: ${p.reason}` : ''}`})`;
}

/** "shop/payments: 3 on the wire (SNI pay.example), 2 decrypted (node pid 41 openssl), 1 not decrypted (not-probed 1, from shop/cart ×1); 4 plaintext flows". */
export function tlsServerText(s: TlsServerCoverage): string {
  const from = s.clients?.filter((c) => c.notDecrypted > 0).map((c) => `${c.client}${c.libraries ? ` (${c.libraries.join(', ')})` : ''} ×${c.notDecrypted}`).join(', ');
  const procs = s.processes?.map((p) => `${p.comm ?? 'pid'}${p.pid !== undefined ? ` pid ${p.pid}` : ''} ${p.library}`).join(', ');
  const serving = s.notDecrypted.processes?.filter((p) => p.end === 'server').map(unreadText).join(', ');
  return `${s.server}: ${s.wire.connections} on the wire${s.wire.snis.length ? ` (SNI ${s.wire.snis.join(', ')})` : ''}, `
    + `${s.decrypted.connections} decrypted${procs ? ` (${procs})` : ''}, `
    + `${s.notDecrypted.connections} not decrypted${s.notDecrypted.connections ? ` (${countsText(s.notDecrypted.byReason as Record<string, number>)}${from ? `, from ${from}` : ''}${serving ? `, served by ${serving}` : ''})` : ''}; `
    + plural(s.plaintextFlows, 'plaintext flow');
}
