/**
 * HPACK header block decoder (RFC 7541) for a passive observer.
 *
 * A sniffer decodes what two peers said to each other; it does not take part. So besides the
 * RFC's decoder it has to cope with not knowing the dynamic table: the capture began mid-
 * connection, or a header block was lost in a gap. Then it keeps decoding what can be known
 * without the table and never guesses (see "Desynced tables" below).
 *
 * Field representations, by the first octet of each (§6):
 *
 *   1xxxxxxx  indexed field (§6.1)                   index: 7-bit prefix integer
 *   01xxxxxx  literal, incremental indexing (§6.2.1) name index: 6-bit prefix (0 = literal name)
 *   001xxxxx  dynamic table size update (§6.3)       new max size: 5-bit prefix
 *   0001xxxx  literal, never indexed (§6.2.3)        name index: 4-bit prefix (0 = literal name)
 *   0000xxxx  literal, without indexing (§6.2.2)     name index: 4-bit prefix (0 = literal name)
 *
 * A string literal (§5.2) is one octet H|length (7-bit prefix) and `length` octets, raw or
 * Huffman-coded when H is set. Names and values are octets; they are returned as latin1 strings,
 * one char per octet, like tapwire's HTTP/1 headers, so `string.length` is the octet count the
 * table sizes (§4.1) are computed from.
 *
 * Views and copies: decode() reads the block through a zero-copy Buffer view; every name and value
 * it returns is a new string, so nothing it keeps refers to the caller's buffer after it returns.
 *
 * ## Desynced tables
 *
 * The dynamic table is a FIFO: entries are added at index 1 and evicted from the oldest end
 * (§4.4). So at any moment the table holds the N most recent insertions, for some N. After
 * desync() this decoder tracks the entries inserted since (the *known* entries, newest first);
 * older entries are *unknown*. Whatever the table's true size, true index i (1 ≤ i ≤ N) is the
 * i-th most recent insertion (an entry too large for the table empties it instead of being added,
 * which only makes the true table shorter), so for a valid stream a reference to dynamic index
 * i ≤ (known count) is that known entry, and a reference beyond them is an unknown entry. Hence:
 *
 *  - static references and literal names/values decode as usual;
 *  - a reference to a known entry decodes; one beyond the known entries is counted in `unknown`
 *    and the field is omitted (an index that could not exist even in a full table of 32-octet
 *    entries is still `hpack.bad_index`);
 *  - a literal whose indexed name is unknown is omitted and counted (its value is read, never
 *    shown under a guessed name); with incremental indexing it still adds an entry, whose name
 *    is unknown and whose size is known only as at least value + 32 octets;
 *  - known entries are dropped once certainly evicted: when the minimum size of them and all newer
 *    entries exceeds an upper bound of the table's maximum size. Dropping too late is harmless
 *    (a valid peer cannot reference an entry it evicted); dropping too early would only turn a
 *    decodable reference into an unknown one.
 *
 * Resynchronisation. The table is fully known again (`desynced` false) when no unknown older entry
 * can remain and no known entry has an unknown name. Older entries are proven gone when
 *  - a dynamic table size update to 0 arrives (the table is empty), or, more generally,
 *  - the minimum size of all entries inserted since the desync plus 32 (the smallest possible
 *    entry) exceeds a *proven* upper bound of the maximum table size: then no unknown entry fits
 *    beside them (or one of them was evicted, and FIFO eviction removed every older entry first).
 * The bound is proven when a size update has been seen since the desync (the maximum is then
 * exact), or when the SETTINGS_HEADER_TABLE_SIZE limit is known: given to the constructor, the
 * RFC's initial 4096 on a decoder that saw the connection start, raised by setMaxTableSizeLimit(),
 * or lowered by it and then applied by the encoder. A decoder constructed `desynced: true` without
 * `maxTableSize` does not know the limit and waits for a size update. Entries with unknown names keep `desynced` true until they are evicted.
 *
 * So `desynced` false means: every entry a valid encoder can reference is known and decodes, and
 * a reference past the table is `hpack.bad_index` again. When the maximum size is only bounded
 * (resynced on the limit, no size update seen), the decoder may still hold a few old entries the
 * encoder already evicted under a smaller maximum; a valid encoder cannot reference them.
 *
 * Malformed input (HpackError) also desyncs: the encoder's table after a representation that
 * could not be read is unknown.
 */
import { huffmanDecode, huffmanMaxDecodedLength, HUFFMAN_RESULT } from './huffman.js';
import { STATIC_TABLE, STATIC_TABLE_LENGTH } from './static-table.js';

export type HeaderField = { name: string; value: string };

export interface DecodeResult {
  /** Fields decoded, in order. With a desynced table, fields whose name or value is unknown are OMITTED (never guessed). */
  fields: HeaderField[];
  /** Fields that could not be decoded because they referenced an unknown dynamic-table entry. */
  unknown: number;
}

/** A dynamic table entry as the decoder knows it (for tests and diagnostics). */
export interface DynamicEntry {
  /** undefined when the entry was inserted with a name from an unknown entry. */
  name: string | undefined;
  value: string;
  /** Octets per §4.1 (name + value + 32); a lower bound when the name is unknown. */
  size: number;
}

/** Stable error codes, each with the reason shown in violations. */
export const HPACK_ERRORS = {
  'hpack.bad_index': 'index 0, or an index beyond the static and dynamic tables (RFC 7541 §2.3.3)',
  'hpack.integer_overflow': 'integer above 2^31 - 1 or encoded in too many octets (RFC 7541 §5.1, §7.4)',
  'hpack.huffman_eos': 'Huffman-coded string contains the EOS symbol (RFC 7541 §5.2)',
  'hpack.huffman_padding': 'Huffman padding longer than 7 bits or not all ones (RFC 7541 §5.2)',
  'hpack.truncated': 'header block ends inside a field representation',
  'hpack.table_size_update': 'dynamic table size update above the limit or after the first field (RFC 7541 §4.2, §6.3)',
} as const;

export type HpackErrorCode = keyof typeof HPACK_ERRORS;

export class HpackError extends Error {
  override readonly name = 'HpackError';
  readonly code: HpackErrorCode;
  /** Byte offset in the header block of the representation or string at fault. */
  readonly offset: number;

  constructor(code: HpackErrorCode, offset: number, detail?: string) {
    super(`${code} at offset ${offset}: ${detail ?? HPACK_ERRORS[code]}`);
    this.code = code;
    this.offset = offset;
  }
}

/** SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 §6.5.2), the default limit and table size. */
export const DEFAULT_TABLE_SIZE = 4096;
/**
 * The largest table size tapwire tracks (1 MiB). Limits above it are clamped, size updates above
 * it are `hpack.table_size_update`. Real peers use 4 KiB to 64 KiB.
 */
export const MAX_TABLE_SIZE = 1 << 20;
/** Largest integer accepted (§7.4 asks for a limit): fits an int32. */
export const MAX_INTEGER = 2 ** 31 - 1;
/** Continuation octets allowed after a full prefix: 5 carry 35 bits, one more allows zero padding. */
export const MAX_INTEGER_CONTINUATION = 6;
/** Size of an entry beyond its octets (§4.1), so also the smallest possible entry. */
export const ENTRY_OVERHEAD = 32;

type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** Largest Huffman output buffer kept between strings. */
const SCRATCH_KEPT = 64 * 1024;
/** Huffman output scratch, shared by all decoders (decode() is synchronous), grown once to SCRATCH_KEPT. */
let scratch = Buffer.allocUnsafe(4096) as Latin1Buffer;

/**
 * The dynamic table as a ring of parallel arrays, newest at index 1 (§2.3.2). Sizes are lower
 * bounds for entries with unknown names, exact otherwise.
 */
class DynamicTable {
  private names: (string | undefined)[] = new Array(64);
  private values: string[] = new Array(64);
  private sizes: number[] = new Array(64);
  private mask = 63;
  /** Slot of the oldest entry. */
  private tail = 0;
  length = 0;
  /** Sum of entry sizes (a lower bound while unknownNames > 0). */
  size = 0;
  /** Entries whose name is unknown. */
  unknownNames = 0;

  private slot(i: number): number {
    return (this.tail + this.length - i) & this.mask;
  }
  name(i: number): string | undefined {
    return this.names[this.slot(i)];
  }
  value(i: number): string {
    return this.values[this.slot(i)]!;
  }
  entrySize(i: number): number {
    return this.sizes[this.slot(i)]!;
  }

  add(name: string | undefined, value: string, size: number): void {
    if (this.length > this.mask) this.grow();
    const s = (this.tail + this.length) & this.mask;
    this.names[s] = name;
    this.values[s] = value;
    this.sizes[s] = size;
    this.length++;
    this.size += size;
    if (name === undefined) this.unknownNames++;
  }

  evictOldest(): void {
    const s = this.tail;
    if (this.names[s] === undefined) this.unknownNames--;
    this.size -= this.sizes[s]!;
    this.names[s] = undefined;
    this.values[s] = '';
    this.tail = (s + 1) & this.mask;
    this.length--;
  }

  clear(): void {
    while (this.length > 0) this.evictOldest();
  }

  private grow(): void {
    const cap = (this.mask + 1) * 2;
    const names = new Array<string | undefined>(cap), values = new Array<string>(cap), sizes = new Array<number>(cap);
    for (let k = 0; k < this.length; k++) {
      const s = (this.tail + k) & this.mask;
      names[k] = this.names[s];
      values[k] = this.values[s]!;
      sizes[k] = this.sizes[s]!;
    }
    this.names = names;
    this.values = values;
    this.sizes = sizes;
    this.mask = cap - 1;
    this.tail = 0;
  }
}

export class HpackDecoder {
  private readonly table = new DynamicTable();
  /** SETTINGS_HEADER_TABLE_SIZE: the bound for size updates (§4.2). */
  private limit: number;
  /** Whether `limit` is known to be the peer's setting (see "Resynchronisation" above). */
  private limitKnown: boolean;
  /** A lower limit announced by SETTINGS that the encoder has not yet shown it applied. */
  private pendingLimit: number | undefined;
  /** The table's maximum size (§4.2): exact when maxExact, else an upper bound. */
  private maxSize: number;
  private maxExact: boolean;
  /** Entries older than the known ones may exist. */
  private olderUnknown = false;
  /** Minimum size of everything inserted since the last desync (only used while olderUnknown). */
  private insertedSinceDesync = 0;

  // Per-block cursor, kept on the instance so the readers need not return pairs.
  private buf: Latin1Buffer = scratch;
  private pos = 0;
  private end = 0;

  constructor(opts: { maxTableSize?: number; desynced?: boolean } = {}) {
    const given = opts.maxTableSize;
    if (given !== undefined) checkSize(given, 'maxTableSize');
    this.limitKnown = given !== undefined || !opts.desynced;
    this.limit = given !== undefined ? Math.min(given, MAX_TABLE_SIZE) : opts.desynced ? MAX_TABLE_SIZE : DEFAULT_TABLE_SIZE;
    this.maxSize = this.limit;
    this.maxExact = !opts.desynced;
    if (opts.desynced) this.olderUnknown = true;
  }

  /** True while some dynamic-table entries are unknown. */
  get desynced(): boolean {
    return this.olderUnknown || this.table.unknownNames > 0;
  }

  /**
   * SETTINGS_HEADER_TABLE_SIZE from the peer's SETTINGS: the upper bound for dynamic table size
   * updates (RFC 7541 §4.2, RFC 9113 §6.5.2). Call it when the SETTINGS frame is seen.
   *
   * An observer cannot tell when the encoder received the setting, so: a higher limit applies at
   * once (accepting more is only lenient, and the table's maximum still changes only by a size
   * update). A lower limit is pending until the encoder shows it applied it, by a size update
   * within it (§4.2 requires one at the start of its next block when its table is larger);
   * until then blocks sent before the encoder saw the SETTINGS may still use the old limit, so
   * nothing is evicted here. A limit announced while the old one is unknown stays unknown until
   * then too.
   */
  setMaxTableSizeLimit(n: number): void {
    checkSize(n, 'SETTINGS_HEADER_TABLE_SIZE');
    const limit = Math.min(n, MAX_TABLE_SIZE);
    if (this.limitKnown && limit >= this.limit) {
      this.limit = limit;
      this.pendingLimit = undefined;
    } else if (limit < this.limit) {
      this.pendingLimit = limit;
    }
  }

  /** Mark the table unknown (capture began mid-connection, or a header block was lost in a gap). */
  desync(): void {
    this.table.clear();
    this.olderUnknown = true;
    this.insertedSinceDesync = 0;
    // A lost block may have held size updates: only the limit bounds the maximum now.
    this.maxExact = false;
    this.maxSize = this.limit;
  }

  /** A copy of the dynamic table as known, newest (index 62) first, for tests and diagnostics. */
  dynamicTable(): { entries: DynamicEntry[]; size: number; maxSize: number } {
    const entries: DynamicEntry[] = [];
    for (let i = 1; i <= this.table.length; i++) {
      entries.push({ name: this.table.name(i), value: this.table.value(i), size: this.table.entrySize(i) });
    }
    return { entries, size: this.table.size, maxSize: this.maxSize };
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATION fragments already joined). Throws
   * HpackError on malformed input; the decoder is then desynced, since the peer's table after a
   * representation this side could not read is unknown.
   */
  decode(block: Uint8Array): DecodeResult {
    this.buf = (Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength)) as Latin1Buffer;
    this.pos = 0;
    this.end = block.length;
    try {
      return this.decodeBlock();
    } catch (err) {
      if (err instanceof HpackError) this.desync();
      throw err;
    } finally {
      this.buf = scratch; // do not keep the caller's buffer alive
    }
  }

  private decodeBlock(): DecodeResult {
    const buf = this.buf;
    const fields: HeaderField[] = [];
    let unknown = 0;
    let fieldSeen = false;
    while (this.pos < this.end) {
      const at = this.pos;
      const first = buf[at]!;
      if (first >= 0x80) {
        // §6.1 indexed field.
        fieldSeen = true;
        const index = this.integer(7);
        if (index === 0) throw new HpackError('hpack.bad_index', at, 'indexed field with index 0 (RFC 7541 §6.1)');
        if (index <= STATIC_TABLE_LENGTH) {
          const entry = STATIC_TABLE[index - 1]!;
          fields.push({ name: entry[0], value: entry[1] });
          continue;
        }
        const i = index - STATIC_TABLE_LENGTH;
        if (i <= this.table.length) {
          const name = this.table.name(i);
          if (name === undefined) unknown++;
          else fields.push({ name, value: this.table.value(i) });
        } else {
          this.unknownEntry(i, at);
          unknown++;
        }
      } else if (first >= 0x20 && first < 0x40) {
        // §6.3 dynamic table size update: only before the block's first field (§4.2).
        if (fieldSeen) throw new HpackError('hpack.table_size_update', at, 'dynamic table size update after a field representation (RFC 7541 §4.2)');
        const size = this.integer(5);
        if (size > this.limit) {
          throw new HpackError('hpack.table_size_update', at, `dynamic table size update to ${size} above the limit ${this.limit} (RFC 7541 §6.3)`);
        }
        if (this.pendingLimit !== undefined && size <= this.pendingLimit) {
          // The encoder has applied the lower limit (see setMaxTableSizeLimit).
          this.limit = this.pendingLimit;
          this.limitKnown = true;
          this.pendingLimit = undefined;
        }
        this.maxSize = size;
        this.maxExact = true;
        this.evict();
        this.checkResync();
      } else {
        // §6.2 literals: 01 incremental indexing (6-bit index), 0000 without / 0001 never indexed (4-bit).
        fieldSeen = true;
        const indexing = first >= 0x40;
        const index = this.integer(indexing ? 6 : 4);
        let name: string | undefined;
        if (index === 0) name = this.string();
        else if (index <= STATIC_TABLE_LENGTH) name = STATIC_TABLE[index - 1]![0];
        else {
          const i = index - STATIC_TABLE_LENGTH;
          if (i <= this.table.length) name = this.table.name(i);
          else this.unknownEntry(i, at);
        }
        const value = this.string();
        if (name === undefined) unknown++;
        else fields.push({ name, value });
        if (indexing) this.insert(name, value);
      }
    }
    return { fields, unknown };
  }

  /** A reference past the known entries: unknown if older entries may exist, else malformed. */
  private unknownEntry(i: number, at: number): void {
    // Each unknown entry takes at least 32 octets of what the known entries leave free.
    const room = Math.max(0, this.maxSize - this.table.size) / ENTRY_OVERHEAD;
    if (!this.olderUnknown || i - this.table.length > room) {
      throw new HpackError('hpack.bad_index', at, `dynamic index ${i} beyond the ${this.table.length} entries of the table (RFC 7541 §2.3.3)`);
    }
  }

  /** Adds an entry (§4.4): evicting oldest first; an entry larger than the table empties it. */
  private insert(name: string | undefined, value: string): void {
    const size = (name === undefined ? 0 : name.length) + value.length + ENTRY_OVERHEAD;
    if (this.olderUnknown) this.insertedSinceDesync += size;
    if (size > this.maxSize) this.table.clear();
    else {
      this.table.add(name, value, size);
      this.evict();
    }
    this.checkResync();
  }

  private evict(): void {
    while (this.table.size > this.maxSize) this.table.evictOldest();
  }

  /** See "Resynchronisation" in the file comment. */
  private checkResync(): void {
    if (!this.olderUnknown || !(this.maxExact || this.limitKnown)) return;
    if (this.insertedSinceDesync + ENTRY_OVERHEAD > this.maxSize) this.olderUnknown = false;
  }

  /** §5.1 integer with an N-bit prefix, starting at the current octet. */
  private integer(prefixBits: number): number {
    const buf = this.buf;
    const at = this.pos;
    const max = (1 << prefixBits) - 1;
    let value = buf[this.pos++]! & max;
    if (value < max) return value;
    let multiplier = 1;
    for (let n = 0; n < MAX_INTEGER_CONTINUATION; n++) {
      if (this.pos >= this.end) throw new HpackError('hpack.truncated', at, 'header block ends inside an integer (RFC 7541 §5.1)');
      const octet = buf[this.pos++]!;
      value += (octet & 0x7f) * multiplier;
      if (value > MAX_INTEGER) throw new HpackError('hpack.integer_overflow', at);
      if (octet < 0x80) return value;
      multiplier *= 128;
    }
    throw new HpackError('hpack.integer_overflow', at, `integer with more than ${MAX_INTEGER_CONTINUATION} continuation octets (RFC 7541 §5.1)`);
  }

  /** §5.2 string literal: H bit, 7-bit prefix length, octets (raw or Huffman-coded). */
  private string(): string {
    const at = this.pos;
    if (at >= this.end) throw new HpackError('hpack.truncated', at, 'header block ends before a string literal (RFC 7541 §5.2)');
    const huffman = this.buf[at]! >= 0x80;
    const length = this.integer(7);
    const start = this.pos;
    if (length > this.end - start) {
      throw new HpackError('hpack.truncated', at, `string literal of ${length} octets with ${this.end - start} left in the block (RFC 7541 §5.2)`);
    }
    this.pos = start + length;
    if (length === 0) return '';
    if (!huffman) return this.buf.latin1Slice(start, this.pos);
    const need = huffmanMaxDecodedLength(length);
    if (scratch.length < need && need <= SCRATCH_KEPT) scratch = Buffer.allocUnsafe(SCRATCH_KEPT) as Latin1Buffer;
    // A rare huge string gets a buffer of its own rather than growing the kept one.
    const out = scratch.length >= need ? scratch : (Buffer.allocUnsafe(need) as Latin1Buffer);
    const n = huffmanDecode(this.buf, start, this.pos, out);
    if (n === HUFFMAN_RESULT.eos) throw new HpackError('hpack.huffman_eos', at);
    if (n === HUFFMAN_RESULT.padding) throw new HpackError('hpack.huffman_padding', at);
    return out.latin1Slice(0, n);
  }
}

function checkSize(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`HpackDecoder: ${what} must be a non-negative integer, got ${n}`);
}
