/**
 * Which ids a block may hold: get(id) of a flow no longer in memory reads only the blocks whose
 * filter says maybe, instead of every block on disk. A Bloom filter with 4 probes by double
 * hashing (FNV-1a and a remix of it); sized by its block (see BlockList), so at typical record
 * sizes false positives stay around 1 %.
 */
const PROBES = 4;

export class Bloom {
  constructor(readonly bits: Uint8Array) {}

  static sized(bytes: number): Bloom {
    return new Bloom(new Uint8Array(bytes));
  }

  add(key: string): void {
    this.probe(key, (byte, bit) => {
      this.bits[byte]! |= bit;
      return true;
    });
  }

  has(key: string): boolean {
    return this.probe(key, (byte, bit) => (this.bits[byte]! & bit) !== 0);
  }

  /** Calls fn for each probe position until it returns false; true when all returned true. */
  private probe(key: string, fn: (byte: number, bit: number) => boolean): boolean {
    let h1 = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) h1 = Math.imul(h1 ^ key.charCodeAt(i), 0x01000193);
    const h2 = Math.imul(h1 ^ (h1 >>> 15), 0x2c1b3c6d) | 1;
    const m = this.bits.length * 8;
    for (let i = 0; i < PROBES; i++) {
      const pos = ((h1 + Math.imul(i, h2)) >>> 0) % m;
      if (!fn(pos >> 3, 1 << (pos & 7))) return false;
    }
    return true;
  }
}
