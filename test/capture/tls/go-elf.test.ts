/**
 * Go's crypto/tls found in ELF files (src/capture/tls/goelf.ts): the Go https peer
 * (test/agent/pods/go-tls) built with the current Go, Debian's Go 1.19 and stripped. The entry
 * points found by .symtab and by .gopclntab agree, every RET offset is an instruction start (checked
 * against `objdump -d` when binutils is installed), and files that are not Go, or Go without
 * crypto/tls, say so. Skips when no Go toolchain is installed.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GO_TLS_FUNCTIONS, inspectGo } from '../../../src/capture/tls/goelf.js';
import { pclntabFunctions } from '../../../src/capture/tls/gopclntab.js';
import { bodyProbeOffset, entryProbeOffset, retOffsets } from '../../../src/capture/tls/gorets.js';
import { goArm64Build, goBuilds } from './go-build.js';

const { builds, missing } = goBuilds();
const why = builds.length ? '' : missing.join('; ');
if (why) console.warn(`test/capture/tls/go-elf.test.ts skipped: ${why}`);
else if (missing.length) console.warn(`test/capture/tls/go-elf.test.ts: some builds missing: ${missing.join('; ')}`);
const hasObjdump = spawnSync('objdump', ['--version']).status === 0;
if (!hasObjdump) console.warn('test/capture/tls/go-elf.test.ts: no objdump (binutils): RET offsets are not cross-checked');

/** Instruction-start addresses and the RET ones in [start, end), from objdump. */
function objdumpRets(path: string, start: number, end: number, tool = 'objdump'): { starts: Set<number>; rets: number[]; jumps: Set<number> } {
  const r = spawnSync(tool, ['-d', '--no-show-raw-insn', `--start-address=0x${start.toString(16)}`, `--stop-address=0x${end.toString(16)}`, path], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const starts = new Set<number>();
  const rets: number[] = [];
  const jumps = new Set<number>();
  for (const line of r.stdout.split('\n')) {
    const m = /^\s+([0-9a-f]+):\s+(\S+)/.exec(line);
    if (!m) continue;
    const addr = parseInt(m[1]!, 16);
    starts.add(addr);
    if (/^ret/.test(m[2]!)) rets.push(addr);
    if (/^j(be|na)\b/.test(m[2]!)) jumps.add(addr);
  }
  return { starts, rets, jumps };
}

describe.skipIf(why !== '')('Go crypto/tls in ELF files', () => {
  it.each(builds.map((b) => [b.name, b] as const))('%s: version, functions, RETs', (_n, b) => {
    const info = inspectGo(b.path)!;
    expect(info, b.path).toBeDefined();
    expect(info.reason).toBeUndefined();
    expect(info.goVersion).toBe(b.goVersion);
    expect(info.source).toBe(b.stripped ? 'pclntab' : 'symtab');
    expect(info.functions.map((f) => f.name)).toEqual([...GO_TLS_FUNCTIONS]);
    for (const f of info.functions) {
      expect(f.rets.length, f.name).toBeGreaterThan(0);
      for (const r of f.rets) expect(r >= f.offset && r < f.offset + f.size).toBe(true);
      // Write and Read check the stack bound first (they have frames): their entry probe is on that jump.
      if (f.name !== 'crypto/tls.(*Conn).Close') expect(f.probe, f.name).toBeGreaterThan(f.offset);
      expect(f.probe - f.offset).toBeLessThan(16);
    }
  });

  it.each(builds.filter((b) => !b.stripped).map((b) => [b.name, b] as const))('%s: .symtab and .gopclntab agree', (_n, b) => {
    const info = inspectGo(b.path)!;
    // The same file read through its pclntab (section found by readelf's view of it).
    const sh = spawnSync('readelf', ['-SW', b.path], { encoding: 'utf8' }).stdout;
    const sect = (name: string) => {
      const m = new RegExp(`\\${name}\\s+\\S+\\s+([0-9a-f]+) ([0-9a-f]+) ([0-9a-f]+)`).exec(sh);
      return m ? { addr: parseInt(m[1]!, 16), offset: parseInt(m[2]!, 16), size: parseInt(m[3]!, 16) } : undefined;
    };
    const pcln = sect('.gopclntab'), text = sect('.text');
    if (!pcln || !text) return void console.warn('no readelf: pclntab not cross-checked');
    const buf = Buffer.alloc(pcln.size);
    const fd = openSync(b.path, 'r');
    readSync(fd, buf, 0, pcln.size, pcln.offset);
    closeSync(fd);
    const fromPcln = pclntabFunctions(buf, text.addr, new Set(GO_TLS_FUNCTIONS));
    for (const f of info.functions) {
      const p = fromPcln.find((x) => x.name === f.name)!;
      expect(p, f.name).toBeDefined();
      expect(p.entry).toBe(f.address);
      // .symtab's size stops at the last instruction; pclntab's end is the next function (padding between).
      expect(p.end).toBeGreaterThanOrEqual(f.address + f.size);
    }
  });

  it('the stripped build has the same functions, at the same places relative to each other, as the unstripped one', () => {
    const stripped = builds.find((b) => b.stripped);
    const full = builds.find((b) => !b.stripped && b.goVersion === stripped?.goVersion);
    if (!stripped || !full) return void console.warn('no stripped/unstripped pair built');
    const a = inspectGo(full.path)!, s = inspectGo(stripped.path)!;
    for (const f of a.functions) {
      const g = s.functions.find((x) => x.name === f.name)!;
      expect(g.rets.map((r) => r - g.offset)).toEqual(f.rets.map((r) => r - f.offset));
    }
  });

  it.skipIf(!hasObjdump).each(builds.map((b) => [b.name, b] as const))('%s: every RET is an instruction start, as objdump decodes it', (_n, b) => {
    const info = inspectGo(b.path)!;
    for (const f of info.functions) {
      const d = objdumpRets(b.path, f.address, f.address + f.size);
      const rets = f.rets.map((r) => r - f.offset + f.address);
      for (const r of rets) expect(d.starts.has(r), `${f.name} ${r.toString(16)}`).toBe(true);
      expect(rets).toEqual(d.rets);
      // The entry probe: the prologue's stack-check jump, an instruction start (objdump: jbe).
      const probe = f.probe - f.offset + f.address;
      expect(d.starts.has(probe), `${f.name} probe ${probe.toString(16)}`).toBe(true);
      expect(d.jumps.has(probe) || probe === f.address, `${f.name} probe ${probe.toString(16)}`).toBe(true);
      // The body probe: the instruction right after that jump (run once per call), an instruction start.
      const body = f.body - f.offset + f.address;
      expect(d.starts.has(body), `${f.name} body ${body.toString(16)}`).toBe(true);
      if (probe !== f.address) expect(body, f.name).toBeGreaterThan(probe);
    }
  });

  it('the body probe goes on the instruction after the stack-check jump, else on the entry', () => {
    // cmp rsp, [r14+0x10] ; jbe +0x10 ; push rbp
    expect(bodyProbeOffset(Buffer.from('493b6610761055', 'hex'), 62)).toBe(6);
    // lea r12, [rsp-0x48] ; cmp r12, [r14+0x10] ; jbe rel32 ; push rbp
    expect(bodyProbeOffset(Buffer.from('4c8d6424b84d3b66100f861000000055', 'hex'), 62)).toBe(15);
    expect(bodyProbeOffset(Buffer.from('4889d87610', 'hex'), 62)).toBe(0);
    expect(bodyProbeOffset(Buffer.from('c0035fd6', 'hex'), 183)).toBe(0);
  });

  it('the entry probe goes on the stack-check jump only after LEA/CMP, else on the entry', () => {
    // cmp rsp, [r14+0x10] ; jbe +0x10
    expect(entryProbeOffset(Buffer.from('493b66107610', 'hex'), 62)).toBe(4);
    // lea r12, [rsp-0x48] ; cmp r12, [r14+0x10] ; jbe
    expect(entryProbeOffset(Buffer.from('4c8d6424b84d3b66107610', 'hex'), 62)).toBe(9);
    // mov rax, rbx ; jbe: something else first, so the entry
    expect(entryProbeOffset(Buffer.from('4889d87610', 'hex'), 62)).toBe(0);
    expect(entryProbeOffset(Buffer.from('c0035fd6', 'hex'), 183)).toBe(0);
  });

  it('a C3 byte inside another instruction is not a RET', () => {
    // mov eax, 0xc3 ; ret ; ret 8
    expect(retOffsets(Buffer.from([0xb8, 0xc3, 0, 0, 0, 0xc3, 0xc2, 8, 0]), 62)).toEqual([5, 6]);
    expect(retOffsets(Buffer.from('1f2003d5c0035fd6', 'hex'), 183)).toEqual([4]);
  });

  it('arm64 (cross-compiled): functions and RETs found, then refused as an unsupported architecture', () => {
    const path = goArm64Build();
    if (!path) return void console.warn('no arm64 cross-build: arm64 not checked');
    const info = inspectGo(path)!;
    expect(info.machine).toBe(183);
    expect(info.reason).toMatch(/^unsupported architecture \(ELF machine arm64\)/);
    expect(info.functions.map((f) => f.name)).toEqual([...GO_TLS_FUNCTIONS]);
    for (const f of info.functions) {
      expect(f.rets.length, f.name).toBeGreaterThan(0);
      for (const r of f.rets) expect((r - f.offset) % 4).toBe(0);
    }
    // llvm-objdump decodes arm64 (GNU objdump here is x86 only).
    if (spawnSync('llvm-objdump', ['--version']).status !== 0) return void console.warn('no llvm-objdump: arm64 RETs not cross-checked');
    for (const f of info.functions) {
      expect(f.rets.map((r) => r - f.offset + f.address), f.name).toEqual(objdumpRets(path, f.address, f.address + f.size, 'llvm-objdump').rets);
    }
  });

  it('a binary whose .go.buildinfo says Go 1.16 is refused: no register ABI before 1.17', () => {
    const b = builds.find((x) => !x.stripped)!;
    const bytes = readFileSync(b.path);
    // The copy in .go.buildinfo (runtime.buildVersion holds another, earlier in the file).
    const at = bytes.indexOf(Buffer.from(b.goVersion), bytes.indexOf(Buffer.from('\xff Go buildinf:', 'latin1')));
    expect(at).toBeGreaterThan(0);
    // Same length, so nothing else moves: go1.26.8 → go1.16.8.
    Buffer.from(b.goVersion.replace(/^go1\.\d\d/, 'go1.16')).copy(bytes, at);
    const path = join(mkdtempSync(join(tmpdir(), 'tapwire-go116-')), 'old');
    writeFileSync(path, bytes);
    const info = inspectGo(path)!;
    expect(info.goVersion).toMatch(/^go1\.16/);
    expect(info.reason).toMatch(/^built by go1\.16.*: before Go 1\.17 arguments are passed on the stack/);
  });

  it('files that are not Go are not Go; a Go program without crypto/tls says so', () => {
    expect(inspectGo(process.execPath)).toBeUndefined();
    expect(inspectGo('/nonexistent')).toBeUndefined();
    const go = spawnSync('go', ['env', 'GOROOT'], { encoding: 'utf8' }).stdout.trim();
    // gofmt: a Go program with no TLS in it.
    const info = go ? inspectGo(`${go}/bin/gofmt`) : undefined;
    if (!info) return;
    expect(info.reason).toBe('no crypto/tls linked in');
  });
});
