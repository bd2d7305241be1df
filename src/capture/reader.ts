import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { Violations } from '../common/index.js';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapParser } from './pcap.js';
import { PCAPNG_SHB, PcapngParser } from './pcapng.js';
import { CaptureFormatError, type PacketSink, type ReaderInfo } from './types.js';

/** Bytes asked of the file system per read: large enough that per-chunk costs vanish. */
export const READ_CHUNK = 4 << 20;
/**
 * A record split across two reads is completed from at most this many bytes of the next read
 * (enough for any pcap record: 16 + 262,144). Larger pcapng blocks fall back to joining whole.
 */
const STRADDLE_JOIN = 16 + 262_144 + 16;

export interface ReadOptions {
  /** Called after each chunk with the total bytes read; used by progress bars. */
  onProgress?: (bytesRead: number) => void;
  /** Awaited after each chunk: lets the consumer apply back-pressure (e.g. a slow stdout). */
  afterChunk?: () => Promise<void> | void;
  violations?: Violations;
}

function describeMagic(head: Buffer): string {
  if (head.length === 0) return 'the file is empty';
  const hex = head.subarray(0, 4).toString('hex');
  if (head.length < 4) return `only ${head.length} bytes long, too short for a capture header`;
  const text = head.subarray(0, 4).toString('latin1');
  const printable = /^[\x20-\x7e]{4}$/.test(text) ? ` ("${text}")` : '';
  return `not a pcap or pcapng file: it starts with bytes ${hex}${printable}, not a capture magic number`;
}

/** Which parser a file's first four bytes call for, or undefined. */
function sniff(head: Buffer): 'pcap' | 'pcapng' | undefined {
  const le = head.readUInt32LE(0);
  const be = head.readUInt32BE(0);
  if (le === PCAPNG_SHB) return 'pcapng';
  if (le === PCAP_MAGIC_US || be === PCAP_MAGIC_US || le === PCAP_MAGIC_NS || be === PCAP_MAGIC_NS) return 'pcap';
  return undefined;
}

/**
 * Streams a capture file (or stdin for "-") through a pcap or pcapng parser. It never holds more
 * than one read chunk plus one partial record, so memory stays flat whatever the file size.
 * Throws CaptureFormatError when the input is not a capture; a file cut mid-record is not an
 * error: everything before the cut is delivered and `truncatedAt` says where it ended.
 */
export async function readCapture(file: string, sink: PacketSink, opts: ReadOptions = {}): Promise<ReaderInfo> {
  const violations = opts.violations ?? new Violations();
  let stream: AsyncIterable<Buffer>;
  if (file === '-') {
    stream = process.stdin as Readable & AsyncIterable<Buffer>;
  } else {
    try {
      const st = statSync(file);
      if (st.isDirectory()) throw new CaptureFormatError(file, 'is a directory, not a capture file');
    } catch (err) {
      if (err instanceof CaptureFormatError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new CaptureFormatError(file, code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? String(err)})`);
    }
    stream = fileChunks(file);
  }
  const name = file === '-' ? '<stdin>' : file;

  let parser: PcapParser | PcapngParser | undefined;
  let format: 'pcap' | 'pcapng' = 'pcap';
  let pending: Buffer | undefined; // unparsed tail of the previous chunk
  let base = 0; // file offset of pending[0] / the current buffer's first byte
  let bytesRead = 0;

  try {
    for await (const chunk of stream) {
      bytesRead += chunk.length;
      let buf = chunk;
      if (pending && pending.length > 0) {
        if (!parser || pending.length >= STRADDLE_JOIN) {
          buf = Buffer.concat([pending, chunk]);
        } else {
          // Only the record that straddles the two chunks is copied: join the tail with the head
          // of this chunk, parse that, then parse the rest of the chunk in place.
          const joined = Buffer.concat([pending, chunk.subarray(0, Math.min(chunk.length, STRADDLE_JOIN))]);
          const used = parser.parse(joined, 0, base);
          base += used;
          buf = used >= pending.length ? chunk.subarray(used - pending.length) : Buffer.concat([pending.subarray(used), chunk]);
        }
        pending = undefined;
      }
      if (!parser) {
        if (buf.length < 4) { pending = buf; continue; }
        const kind = sniff(buf);
        if (!kind) throw new CaptureFormatError(name, describeMagic(buf));
        format = kind;
        parser = kind === 'pcap' ? new PcapParser(sink, violations) : new PcapngParser(sink, violations);
      }
      const pos = parser.parse(buf, 0, base);
      base += pos;
      // Copy the tail so the big chunk can be freed; it is at most one partial record.
      pending = pos < buf.length ? Buffer.from(buf.subarray(pos)) : undefined;
      opts.onProgress?.(bytesRead);
      if (opts.afterChunk) await opts.afterChunk();
    }
  } catch (err) {
    if (err instanceof CaptureFormatError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new CaptureFormatError(name, `read failed (${code ?? String(err)})`);
  }

  if (!parser) {
    throw new CaptureFormatError(name, describeMagic(pending ?? Buffer.alloc(0)));
  }
  const info: ReaderInfo = { format, bytesRead };
  if (pending && pending.length > 0) {
    if (parser.resynchronising) {
      parser.atEof = true;
      const pos = parser.parse(pending, 0, base);
      base += pos;
      pending = pending.subarray(pos);
    }
    if (pending.length > 0) {
      if (base < (format === 'pcap' ? 24 : 28)) {
        throw new CaptureFormatError(name, `truncated ${format} file header (${bytesRead} bytes)`);
      }
      info.truncatedAt = base;
    }
  }
  return info;
}

/** Size of a regular file, or undefined for stdin and pipes (no progress bar then). */
export function captureSize(file: string): number | undefined {
  if (file === '-') return undefined;
  try {
    const st = statSync(file);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Regular files are read synchronously in large blocks: sequential reads are served by the
 * kernel's read-ahead, and the pipeline does not sit idle waiting for thread-pool round trips.
 * Each block is a fresh buffer because packet views may outlive the loop iteration.
 */
async function* fileChunks(file: string): AsyncGenerator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK);
      const n = readSync(fd, buf, 0, READ_CHUNK, null);
      if (n === 0) return;
      yield n === READ_CHUNK ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}
