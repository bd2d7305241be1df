/**
 * The mark of a packet that is not wire bytes but decrypted TLS plaintext, synthesized as TCP on
 * the connection's real 4-tuple (issue 17, kubeshark/kubeshark#1882: snapshots keep decrypted
 * plaintext). The agent stores such packets beside the ciphertext; a pcapng export puts them on
 * their own interface (PLAINTEXT_INTERFACE) with the mark in each Enhanced Packet Block's
 * opt_comment (draft-ietf-opsawg-pcapng §4.3, option 1), so Wireshark shows it and a reader of
 * the file keeps the plaintext apart from the ciphertext of the same 4-tuple.
 */

/** Where the plaintext came from: the shape of a flow record's `tls` (flows/record.ts TlsOrigin). */
export interface PlaintextMark {
  via: 'uprobe';
  /** The TLS library probed: openssl, go, node. */
  library: string;
  pid?: number;
  comm?: string;
  /** The server name of the same connection's ClientHello, when the agent had seen it. */
  sni?: string;
}

/** The pcapng interface (if_name) that carries synthesized plaintext packets. */
export const PLAINTEXT_INTERFACE = 'tapwire-tls-plaintext';
export const PLAINTEXT_INTERFACE_DESCRIPTION = 'decrypted TLS plaintext read by tapwire through eBPF uprobes, synthesized as TCP on the real 4-tuple: not bytes seen on the wire';
/** What every mark comment starts with; the JSON of the mark follows. */
export const PLAINTEXT_COMMENT_PREFIX = 'tapwire: decrypted TLS plaintext, synthesized TCP (not wire bytes) ';

/** Comm is a kernel task name (TASK_COMM_LEN 16); library and sni are short names too. */
const MAX_TEXT = 255;

/** The mark as the store keeps it (a segment frame's key): compact JSON, fields in a fixed order. */
export function encodeMark(m: PlaintextMark): string {
  return JSON.stringify({
    via: m.via, library: m.library,
    ...(m.pid !== undefined ? { pid: m.pid } : {}), ...(m.comm !== undefined ? { comm: m.comm } : {}), ...(m.sni !== undefined ? { sni: m.sni } : {}),
  });
}

/** A mark from its JSON, or a sentence saying what was wrong with it. Never throws. */
export function decodeMark(text: string): PlaintextMark | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'the mark is not JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'the mark is not a JSON object';
  const o = v as Record<string, unknown>;
  if (o.via !== 'uprobe') return `unknown mark: via ${JSON.stringify(o.via)} (only "uprobe" is known)`;
  if (!short(o.library)) return 'the mark names no library';
  if (o.pid !== undefined && !(Number.isInteger(o.pid) && (o.pid as number) >= 0 && (o.pid as number) <= 0xffffffff)) return `the mark's pid ${JSON.stringify(o.pid)} is not a process id`;
  for (const k of ['comm', 'sni'] as const) {
    if (o[k] !== undefined && !short(o[k])) return `the mark's ${k} is not a short string`;
  }
  const m: PlaintextMark = { via: 'uprobe', library: o.library as string };
  if (o.pid !== undefined) m.pid = o.pid as number;
  if (o.comm !== undefined) m.comm = o.comm as string;
  if (o.sni !== undefined) m.sni = o.sni as string;
  return m;
}

function short(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_TEXT;
}

/** The opt_comment of a synthesized packet: words for people, then the mark for readers. */
export function markComment(m: PlaintextMark): string {
  return PLAINTEXT_COMMENT_PREFIX + encodeMark(m);
}

/**
 * What a packet comment says: not ours (undefined: an ordinary comment someone wrote), a mark, or
 * ours but unreadable (`error`: a malformed or unknown mark).
 */
export function parseMarkComment(comment: string): { mark: PlaintextMark } | { error: string } | undefined {
  if (!comment.startsWith(PLAINTEXT_COMMENT_PREFIX.trimEnd())) return undefined;
  const m = decodeMark(comment.slice(PLAINTEXT_COMMENT_PREFIX.trimEnd().length).trim());
  return typeof m === 'string' ? { error: m } : { mark: m };
}
