/**
 * OpenSSL's entry points in an ELF file, found by symbol: libssl.so.3 exports them in .dynsym;
 * a binary that links OpenSSL statically (node) has them in .dynsym when it exports them (node
 * does, for addons) or in .symtab unless stripped. Only ELF64 little-endian (x86-64, arm64) is
 * read, and only the section headers and the symbol tables, never the whole file.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** The functions the probes attach to, in the order the addon tries them. */
export const SSL_FUNCTIONS = ['SSL_write', 'SSL_read', 'SSL_write_ex', 'SSL_read_ex', 'SSL_set_fd', 'SSL_free'] as const;

export interface ElfSslInfo {
  path: string;
  /** The SSL_* functions defined in the file (by .dynsym or .symtab). */
  functions: string[];
  /** No .symtab (a stripped file: only exported symbols can be found). */
  stripped: boolean;
  /** Why the file cannot be probed, in words; undefined when it can. */
  reason?: string;
}

const SHT_SYMTAB = 2;
const SHT_DYNSYM = 11;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
/** Symbol tables larger than this are not read (a guard against a corrupt header). */
const MAX_TABLE = 256 << 20;

/** `length` bytes of the file at `offset` (fewer at its end). */
export function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, b, got, length - got, offset + got);
    if (n <= 0) break;
    got += n;
  }
  return got === length ? b : b.subarray(0, got);
}

interface Section { name: number; type: number; offset: number; size: number; link: number; entsize: number }

/** What of OpenSSL's API an ELF file defines, and why it cannot be probed if it cannot. */
export function inspectElf(path: string): ElfSslInfo {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return { path, functions: [], stripped: false, reason: `not readable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  try {
    const size = fstatSync(fd).size;
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) return { path, functions: [], stripped: false, reason: 'not an ELF file' };
    if (eh[4] !== 2 || eh[5] !== 1) return { path, functions: [], stripped: false, reason: 'not a 64-bit little-endian ELF file' };
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    if (!shoff || shentsize < 64 || shoff + shnum * shentsize > size) {
      return { path, functions: [], stripped: true, reason: 'stripped: no section headers, so no symbols to find SSL_write by' };
    }
    const sh = readAt(fd, shoff, shnum * shentsize);
    const sections: Section[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = i * shentsize;
      sections.push({
        name: sh.readUInt32LE(o), type: sh.readUInt32LE(o + 4), offset: Number(sh.readBigUInt64LE(o + 0x18)),
        size: Number(sh.readBigUInt64LE(o + 0x20)), link: sh.readUInt32LE(o + 0x28), entsize: Number(sh.readBigUInt64LE(o + 0x38)),
      });
    }
    const wanted = new Set<string>(SSL_FUNCTIONS);
    const found = new Set<string>();
    const tables = sections.filter((s) => s.type === SHT_DYNSYM || s.type === SHT_SYMTAB);
    for (const t of tables) {
      const strs = sections[t.link];
      if (!strs || t.size > MAX_TABLE || strs.size > MAX_TABLE || t.entsize < 24) continue;
      const syms = readAt(fd, t.offset, t.size);
      const names = readAt(fd, strs.offset, strs.size);
      for (let o = 0; o + 24 <= syms.length; o += t.entsize) {
        const info = syms[o + 4]!;
        const type = info & 0xf;
        if ((type !== STT_FUNC && type !== STT_GNU_IFUNC) || syms.readUInt16LE(o + 6) === 0) continue;
        const nameOff = syms.readUInt32LE(o);
        // Quick reject before decoding: every wanted name starts with "SSL_".
        if (names[nameOff] !== 0x53 || names[nameOff + 1] !== 0x53 || names[nameOff + 2] !== 0x4c || names[nameOff + 3] !== 0x5f) continue;
        const end = names.indexOf(0, nameOff);
        const name = names.toString('latin1', nameOff, end < 0 ? names.length : end);
        if (wanted.has(name)) found.add(name);
      }
    }
    const stripped = !sections.some((s) => s.type === SHT_SYMTAB);
    const functions = SSL_FUNCTIONS.filter((f) => found.has(f));
    let reason: string | undefined;
    if (!found.has('SSL_write') && !found.has('SSL_write_ex') && !found.has('SSL_read') && !found.has('SSL_read_ex')) {
      reason = stripped
        ? (tables.length ? 'stripped, and exports no SSL_write/SSL_read: an OpenSSL linked in statically cannot be found' : 'stripped: no symbol table at all')
        : 'no SSL_write or SSL_read symbol: it does not contain OpenSSL';
    }
    return reason ? { path, functions, stripped, reason } : { path, functions, stripped };
  } finally {
    closeSync(fd);
  }
}
