/**
 * Which TLS library a process uses, and whether the uprobes read it (issue 17, "Coverage"): so
 * that a TLS connection that was not decrypted says why by its process (kubeshark#1741: TLS from
 * unsupported stacks disappears silently; #1885: which pods can be decrypted).
 *
 * From /proc/<pid>/maps (shared libraries: libssl, libjvm, libgnutls, NSS) and the executable
 * (OpenSSL linked in statically, Go's crypto/tls, rustls or BoringSSL by their names). A process in
 * another mount namespace is read through /proc/<pid>/root. Executables are looked at once per
 * file (device and inode), processes once per exec (the owner map forgets a pid on its exec).
 */
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { inspectElf, readAt } from '../tls/elf.js';
import { inspectGo } from '../tls/goelf.js';

/** The libraries told apart. Only openssl and go are probed (native/tls.bpf.c). */
export type TlsLibraryName = 'openssl' | 'go' | 'java' | 'gnutls' | 'nss' | 'boringssl' | 'rustls' | 'unknown';

/** Why an end's TLS is not read, as a stable code (TlsEndProcess.reason). */
export type EndReason = 'unsupported-library' | 'stripped-binary' | 'no-symbols' | 'not-probed';

export interface ProcessTls {
  library: TlsLibraryName;
  probed: boolean;
  reason?: EndReason;
  /** What was found, in words. */
  detail: string;
}

/** A library's name for people. */
export const LIBRARY_NAMES: Record<TlsLibraryName, string> = {
  openssl: 'OpenSSL', go: 'Go crypto/tls', java: 'Java JSSE', gnutls: 'GnuTLS', nss: 'NSS', boringssl: 'BoringSSL', rustls: 'rustls', unknown: 'unknown',
};

const OPENSSL_LIB = /\/libssl\.so(\.[0-9.]+)?$/;
const MAPPED: [RegExp, TlsLibraryName, string][] = [
  // JSSE is TLS written in Java: libjvm says the process is a JVM, and a JVM's TLS is JSSE unless
  // it brings a native provider (conscrypt, wildfly-openssl), which would map a libssl too.
  [/\/libjvm\.so$/, 'java', "Java's own TLS (JSSE) runs as Java code, with no native library for a uprobe"],
  [/\/libgnutls\.so(\.[0-9.]+)?$/, 'gnutls', 'GnuTLS (gnutls_record_send/recv) is not probed'],
  // NSS's libssl is libssl3.so (OpenSSL's is libssl.so.N).
  [/\/(libnss3|libssl3)\.so$/, 'nss', 'NSS (PR_Write/PR_Read on an SSL socket) is not probed'],
];

/** The longest section read whole when looking for a library's name in a stripped binary's strings. */
const MAX_SCAN = 64 << 20;

/** A path inside a process's mount namespace, as this process can open it. */
function visiblePath(procRoot: string, pid: number, path: string): string {
  try {
    if (readlinkSync(`${procRoot}/${pid}/root`) === '/') return path;
  } catch {
    // fall through
  }
  return `${procRoot}/${pid}/root${path}`;
}

/** Results per executable (`dev:ino`), so a binary run a thousand times is parsed once. */
const byFile = new Map<string, ProcessTls | undefined>();
const MAX_FILES = 4096;

/**
 * The TLS library of process `pid`, looked at now. `gone` when the process could not be read (it
 * exited, or this process may not read it).
 */
export function classifyProcess(pid: number, procRoot = '/proc'): ProcessTls {
  let maps: string;
  try {
    maps = readFileSync(`${procRoot}/${pid}/maps`, 'utf8');
  } catch (e) {
    return { library: 'unknown', probed: false, reason: 'not-probed', detail: `its process could not be looked at (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): it may have exited first` };
  }
  const files = new Set<string>();
  for (const line of maps.split('\n')) {
    const i = line.indexOf('/');
    if (i >= 0) files.add(line.slice(i).replace(/ \(deleted\)$/, ''));
  }
  const mapped = MAPPED.flatMap(([re, library, why]) => {
    const hit = [...files].find((f) => re.test(f));
    return hit ? [{ library, detail: `${hit.slice(hit.lastIndexOf('/') + 1)} mapped: ${why}` }] : [];
  });
  const unsupported = (m: { library: TlsLibraryName; detail: string }): ProcessTls => ({ library: m.library, probed: false, reason: 'unsupported-library', detail: m.detail });
  if (mapped[0]?.library === 'java') return unsupported(mapped[0]);
  // OpenSSL before GnuTLS and NSS: Debian's curl maps libgnutls too (through librtmp and libldap)
  // but does its TLS with libssl.
  const ssl = [...files].find((f) => OPENSSL_LIB.test(f));
  if (!ssl && mapped[0]) return unsupported(mapped[0]);
  if (ssl) {
    const info = inspectElf(visiblePath(procRoot, pid, ssl));
    const name = ssl.slice(ssl.lastIndexOf('/') + 1);
    return info.reason
      ? { library: 'openssl', probed: false, reason: 'no-symbols', detail: `${name} mapped, but it cannot be probed: ${info.reason}` }
      : { library: 'openssl', probed: true, detail: `${name} mapped` };
  }
  let exe: string;
  try {
    exe = visiblePath(procRoot, pid, readlinkSync(`${procRoot}/${pid}/exe`).replace(/ \(deleted\)$/, ''));
  } catch (e) {
    return { library: 'unknown', probed: false, reason: 'not-probed', detail: `its executable could not be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  return classifyExecutable(exe);
}

/** The TLS library linked into an executable (cached per file); `unknown` when none is recognised. */
export function classifyExecutable(path: string): ProcessTls {
  let key: string | undefined;
  try {
    const s = statSync(path);
    key = `${s.dev}:${s.ino}`;
  } catch {
    // not cached
  }
  const cached = key !== undefined ? byFile.get(key) : undefined;
  if (cached) return cached;
  const r = executableTls(path);
  if (key !== undefined) {
    if (byFile.size >= MAX_FILES) byFile.delete(byFile.keys().next().value!);
    byFile.set(key, r);
  }
  return r;
}

function executableTls(path: string): ProcessTls {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const strings = elfStrings(path);
  if (strings.boringssl) return { library: 'boringssl', probed: false, reason: 'unsupported-library', detail: `${name} has BoringSSL linked in, which is not probed` };
  const ssl = inspectElf(path);
  if (!ssl.reason) return { library: 'openssl', probed: true, detail: `${name} has OpenSSL linked in (${ssl.functions.join(', ')})` };
  const go = inspectGo(path);
  if (go) {
    const v = go.goVersion || 'an unknown Go';
    if (!go.reason) return { library: 'go', probed: true, detail: `${name} is a Go program (${v}) with crypto/tls found by ${go.source}` };
    if (go.reason === 'no crypto/tls linked in') {
      return strings.rustls === undefined
        ? { library: 'unknown', probed: false, reason: 'not-probed', detail: `${name} is a Go program (${v}) without crypto/tls` }
        : { library: 'rustls', probed: false, reason: 'unsupported-library', detail: `${name} has rustls (${strings.rustls})` };
    }
    const unsupported = /before Go 1\.17|architecture/.test(go.reason);
    return { library: 'go', probed: false, reason: unsupported ? 'unsupported-library' : 'no-symbols', detail: `${name} is a Go program (${v}): ${go.reason}` };
  }
  // Not OpenSSL or Go: worth reading its strings whole (a stripped Rust binary keeps crate paths).
  if (strings.rustls === undefined && !strings.boringssl) Object.assign(strings, elfStrings(path, true));
  if (strings.boringssl) return { library: 'boringssl', probed: false, reason: 'unsupported-library', detail: `${name} has BoringSSL linked in, which is not probed` };
  if (strings.rustls !== undefined) return { library: 'rustls', probed: false, reason: 'unsupported-library', detail: `${name} has rustls linked in (found in its ${strings.rustls}), which is not probed` };
  if (strings.stripped) return { library: 'unknown', probed: false, reason: 'stripped-binary', detail: `${name} is stripped: a TLS library linked into it cannot be found without symbols` };
  return { library: 'unknown', probed: false, reason: 'not-probed', detail: `${name} maps no TLS library tapwire knows and links none in` };
}

interface ElfStrings {
  /** Where "rustls" was found: "symbols" or a section's name. */
  rustls?: string;
  boringssl: boolean;
  /** No .symtab. */
  stripped: boolean;
}

const RUSTLS = Buffer.from('rustls');
const BORINGSSL = Buffer.from('BoringSSL');
const BORINGSSL_SYM = Buffer.from('BORINGSSL_');

/**
 * Library names in an ELF file's symbol names (.strtab, .dynstr), or with `deep` its read-only
 * strings (.rodata): rustls's crate paths stay in panic locations (`…/rustls-0.23.x/src/…`), and
 * BoringSSL's version text says "BoringSSL". Only ELF64 little-endian; anything else finds nothing.
 */
function elfStrings(path: string, deep = false): ElfStrings {
  const out: ElfStrings = { boringssl: false, stripped: true };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return out;
  }
  try {
    const size = fstatSync(fd).size;
    const eh = readAt(fd, 0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46 || eh[4] !== 2 || eh[5] !== 1) return out;
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    const shstrndx = eh.readUInt16LE(0x3e);
    if (!shoff || shentsize < 64 || !shnum || shoff + shnum * shentsize > size) return out;
    const sh = readAt(fd, shoff, shnum * shentsize);
    const sec = (i: number) => ({ name: sh.readUInt32LE(i * shentsize), type: sh.readUInt32LE(i * shentsize + 4), offset: Number(sh.readBigUInt64LE(i * shentsize + 0x18)), size: Number(sh.readBigUInt64LE(i * shentsize + 0x20)) });
    const names = shstrndx < shnum ? readAt(fd, sec(shstrndx).offset, Math.min(sec(shstrndx).size, 1 << 20)) : Buffer.alloc(0);
    const nameOf = (off: number) => { const e = names.indexOf(0, off); return names.toString('latin1', off, e < 0 ? names.length : e); };
    const sections = Array.from({ length: shnum }, (_, i) => sec(i)).map((s) => ({ ...s, label: nameOf(s.name) }));
    out.stripped = !sections.some((s) => s.type === 2); // SHT_SYMTAB
    const look = (labels: string[], where: (label: string) => string) => {
      for (const s of sections) {
        if (!labels.includes(s.label) || s.size > MAX_SCAN || s.offset + s.size > size) continue;
        const b = readAt(fd, s.offset, s.size);
        if (out.rustls === undefined && b.includes(RUSTLS)) out.rustls = where(s.label);
        if (!out.boringssl && (b.includes(BORINGSSL_SYM) || b.includes(BORINGSSL))) out.boringssl = true;
      }
    };
    if (deep) look(['.rodata'], (l) => `${l} strings`);
    else look(['.strtab', '.dynstr'], () => 'symbols');
    return out;
  } catch {
    return out;
  } finally {
    closeSync(fd);
  }
}
