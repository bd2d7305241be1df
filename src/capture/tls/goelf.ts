/**
 * Go's crypto/tls in an ELF file: whether the file is a Go program (its .go.buildinfo section),
 * which Go built it, and where (*Conn).Write, Read and Close start and return, as file offsets for
 * uprobes. Functions are found by .symtab, or by .gopclntab when the binary is stripped
 * (`-ldflags='-s -w'` drops .symtab but Go keeps .gopclntab: the runtime needs it).
 *
 * Only the register ABI (ABIInternal, Go 1.17+: Go source src/cmd/compile/abi-internal.md) is
 * probed: arguments in RAX, RBX, RCX…, results in RAX…, the goroutine in R14. Before 1.17
 * arguments were on the stack and the probes would read garbage.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readAt } from './elf.js';
import { pclntabFunctions } from './gopclntab.js';
import { bodyProbeOffset, EM_AARCH64, EM_X86_64, entryProbeOffset, retOffsets } from './gorets.js';

/**
 * writeRecordLocked(typ, data) runs under the connection's write lock, once per record: its entry
 * gives the plaintext in the order it goes on the wire. Write's own entry and return do not:
 * two goroutines writing to one connection (an HTTP/2 client's preface and its first request)
 * return in either order after the lock is released. Write stays the fallback when a build has
 * no writeRecordLocked.
 */
export const GO_TLS_FUNCTIONS = ['crypto/tls.(*Conn).Write', 'crypto/tls.(*Conn).Read', 'crypto/tls.(*Conn).Close', 'crypto/tls.(*Conn).writeRecordLocked'] as const;
export type GoTlsFunctionName = (typeof GO_TLS_FUNCTIONS)[number];

export interface GoFunction {
  name: GoTlsFunctionName;
  /** Entry as a virtual address, and as a file offset (what a uprobe is attached at). */
  address: number;
  offset: number;
  size: number;
  /** File offset of the entry probe: the entry, or the prologue's stack-check jump (gorets.ts). */
  probe: number;
  /** File offset of the body's first instruction, run once per call (gorets.ts bodyProbeOffset). */
  body: number;
  /** File offsets of every RET instruction in the function. */
  rets: number[];
}

export interface GoTlsInfo {
  path: string;
  /** From .go.buildinfo, e.g. "go1.26.8"; "" when it cannot be read. */
  goVersion: string;
  /** ELF e_machine: 62 x86-64, 183 arm64. */
  machine: number;
  /** How the functions were found. */
  source: 'symtab' | 'pclntab' | 'none';
  functions: GoFunction[];
  /** Why the file cannot be probed, in words; undefined when it can. */
  reason?: string;
}

/** Which machines the BPF programs read Go's registers on (tls.bpf.c reads RAX/RBX/RCX/R14). */
const PROBED_MACHINES = new Set([EM_X86_64]);
const BUILDINFO_MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const SHT_SYMTAB = 2;
const SHT_NOBITS = 8;
const MAX_SECTION = 256 << 20;

interface Section { name: string; type: number; addr: number; offset: number; size: number; link: number; entsize: number }

function sectionsOf(fd: number, eh: Buffer, fileSize: number): Section[] | undefined {
  const shoff = Number(eh.readBigUInt64LE(0x28));
  const shentsize = eh.readUInt16LE(0x3a);
  const shnum = eh.readUInt16LE(0x3c);
  const shstrndx = eh.readUInt16LE(0x3e);
  if (!shoff || shentsize < 64 || !shnum || shoff + shnum * shentsize > fileSize) return undefined;
  const sh = readAt(fd, shoff, shnum * shentsize);
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = i * shentsize;
    raw.push({
      nameOff: sh.readUInt32LE(o), type: sh.readUInt32LE(o + 4), addr: Number(sh.readBigUInt64LE(o + 0x10)), offset: Number(sh.readBigUInt64LE(o + 0x18)),
      size: Number(sh.readBigUInt64LE(o + 0x20)), link: sh.readUInt32LE(o + 0x28), entsize: Number(sh.readBigUInt64LE(o + 0x38)),
    });
  }
  const strs = raw[shstrndx];
  const names = strs && strs.size < MAX_SECTION ? readAt(fd, strs.offset, strs.size) : Buffer.alloc(0);
  return raw.map((r) => {
    const end = names.indexOf(0, r.nameOff);
    return { ...r, name: r.nameOff < names.length ? names.toString('latin1', r.nameOff, end < 0 ? names.length : end) : '' };
  });
}

/** A virtual address's file offset, through the section holding it. */
function fileOffset(sections: Section[], addr: number): number | undefined {
  const s = sections.find((x) => x.type !== SHT_NOBITS && x.addr && addr >= x.addr && addr < x.addr + x.size);
  return s ? s.offset + (addr - s.addr) : undefined;
}

/**
 * The Go version in .go.buildinfo (Go source debug/buildinfo/buildinfo.go): a 32-byte header,
 * magic "\xff Go buildinf:", pointer size, flags; with flag 2 (Go 1.18+) the version follows
 * inline as a varint-length string, else the header holds pointers to a Go string header.
 */
function goVersion(fd: number, sections: Section[], bi: Section): string {
  const h = readAt(fd, bi.offset, Math.min(bi.size, 64));
  if (h.length < 32 || !h.subarray(0, 14).equals(BUILDINFO_MAGIC)) return '';
  const ptrSize = h[14]!;
  if (h[15]! & 2) {
    let len = 0, shift = 0, i = 32;
    for (; i < h.length; i++) {
      len |= (h[i]! & 0x7f) << shift;
      shift += 7;
      if (!(h[i]! & 0x80)) break;
    }
    return readAt(fd, bi.offset + i + 1, Math.min(len, 64)).toString('utf8');
  }
  if (ptrSize !== 8) return '';
  const strHdr = fileOffset(sections, Number(h.readBigUInt64LE(16)));
  if (strHdr === undefined) return '';
  const sh = readAt(fd, strHdr, 16);
  const data = fileOffset(sections, Number(sh.readBigUInt64LE(0)));
  return data === undefined ? '' : readAt(fd, data, Math.min(Number(sh.readBigUInt64LE(8)), 64)).toString('utf8');
}

/** [major, minor] of "go1.19.8" / "go1.26rc1"; undefined for "devel …" or "". */
export function goMinor(version: string): number | undefined {
  const m = /^go1\.(\d+)/.exec(version);
  return m ? Number(m[1]) : undefined;
}

/** The wanted functions from .symtab: name → [address, size]. */
function symtabFunctions(fd: number, sections: Section[], symtab: Section): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  const strs = sections[symtab.link];
  if (!strs || symtab.size > MAX_SECTION || strs.size > MAX_SECTION || symtab.entsize < 24) return out;
  const syms = readAt(fd, symtab.offset, symtab.size);
  const names = readAt(fd, strs.offset, strs.size);
  const wanted = new Set<string>(GO_TLS_FUNCTIONS);
  const prefix = Buffer.from('crypto/tls.(*Conn).');
  for (let o = 0; o + 24 <= syms.length; o += symtab.entsize) {
    const nameOff = syms.readUInt32LE(o);
    if (names.compare(prefix, 0, prefix.length, nameOff, nameOff + prefix.length) !== 0) continue;
    const end = names.indexOf(0, nameOff);
    const name = names.toString('latin1', nameOff, end < 0 ? names.length : end);
    if (wanted.has(name)) out.set(name, [Number(syms.readBigUInt64LE(o + 8)), Number(syms.readBigUInt64LE(o + 16))]);
  }
  return out;
}

/** Whether the first writable PT_LOAD segment holds the buildinfo magic (a Go binary without section headers). */
function buildinfoInSegments(fd: number, eh: Buffer, fileSize: number): boolean {
  const phoff = Number(eh.readBigUInt64LE(0x20));
  const phentsize = eh.readUInt16LE(0x36);
  const phnum = eh.readUInt16LE(0x38);
  if (!phoff || phentsize < 56 || phoff + phnum * phentsize > fileSize) return false;
  const ph = readAt(fd, phoff, phnum * phentsize);
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    if (ph.readUInt32LE(o) !== 1 || !(ph.readUInt32LE(o + 4) & 2)) continue; // PT_LOAD, PF_W
    const data = readAt(fd, Number(ph.readBigUInt64LE(o + 8)), Math.min(Number(ph.readBigUInt64LE(o + 0x20)), 1 << 20));
    for (let at = data.indexOf(BUILDINFO_MAGIC); at >= 0; at = data.indexOf(BUILDINFO_MAGIC, at + 1)) if (at % 16 === 0) return true;
    return false;
  }
  return false;
}

/**
 * Go's crypto/tls entry points and RETs in an ELF file, or undefined when the file is not a Go
 * program (or not an ELF file at all). A Go program that cannot be probed says why in `reason`.
 */
export function inspectGo(path: string): GoTlsInfo | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const fileSize = fstatSync(fd).size;
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return undefined;
    const machine = eh.readUInt16LE(0x12);
    const base = { path, goVersion: '', machine, source: 'none' as const, functions: [] };
    const sections = sectionsOf(fd, eh, fileSize);
    if (!sections) {
      return buildinfoInSegments(fd, eh, fileSize)
        ? { ...base, reason: 'a Go program without section headers: its function table (.gopclntab) cannot be found' }
        : undefined;
    }
    const bi = sections.find((s) => s.name === '.go.buildinfo');
    if (!bi) return undefined;
    const version = goVersion(fd, sections, bi);
    const info: GoTlsInfo = { ...base, goVersion: version };
    const minor = goMinor(version);
    if (minor !== undefined && minor < 17) return { ...info, reason: `built by ${version}: before Go 1.17 arguments are passed on the stack (no register ABI), which the probes do not read` };
    const unsupported = `unsupported architecture (ELF machine ${machine === EM_AARCH64 ? 'arm64' : machine}): the probes read Go's x86-64 registers`;
    // arm64's functions and RETs are still found (for a future arm64 build of the probes), then refused.
    if (!PROBED_MACHINES.has(machine) && machine !== EM_AARCH64) return { ...info, reason: unsupported };
    let found: { name: GoTlsFunctionName; address: number; size: number }[] = [];
    const symtab = sections.find((s) => s.type === SHT_SYMTAB);
    if (symtab) {
      for (const [name, [address, size]] of symtabFunctions(fd, sections, symtab)) found.push({ name: name as GoTlsFunctionName, address, size });
      info.source = 'symtab';
    }
    if (!found.length) {
      const pcln = sections.find((s) => s.name === '.gopclntab');
      const text = sections.find((s) => s.name === '.text');
      if (!pcln || !text) return { ...info, reason: 'stripped, and no .gopclntab section to find crypto/tls functions by' };
      if (pcln.size > MAX_SECTION) return { ...info, reason: `.gopclntab is ${pcln.size} bytes: too large to read` };
      try {
        found = pclntabFunctions(readAt(fd, pcln.offset, pcln.size), text.addr, new Set(GO_TLS_FUNCTIONS))
          .map((f) => ({ name: f.name as GoTlsFunctionName, address: f.entry, size: f.end - f.entry }));
      } catch (e) {
        return { ...info, reason: `its function table cannot be read (${(e as Error).message})` };
      }
      info.source = 'pclntab';
    }
    for (const name of GO_TLS_FUNCTIONS) {
      const f = found.find((x) => x.name === name);
      const offset = f && fileOffset(sections, f.address);
      if (!f || offset === undefined || f.size <= 0 || f.size > 1 << 20) continue;
      const code = readAt(fd, offset, f.size);
      const rets = retOffsets(code, machine).map((r) => offset + r);
      info.functions.push({
        name, address: f.address, offset, size: f.size, probe: offset + entryProbeOffset(code, machine), body: offset + bodyProbeOffset(code, machine), rets,
      });
    }
    if (!PROBED_MACHINES.has(machine)) return { ...info, reason: unsupported };
    const has = (n: GoTlsFunctionName) => info.functions.some((f) => f.name === n && (n === 'crypto/tls.(*Conn).Close' || f.rets.length > 0));
    if (!has('crypto/tls.(*Conn).Write') && !has('crypto/tls.(*Conn).Read')) {
      info.reason = found.length ? 'crypto/tls.(*Conn).Write and Read have no RET instruction to probe' : 'no crypto/tls linked in';
    }
    return info;
  } finally {
    closeSync(fd);
  }
}
