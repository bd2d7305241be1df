#!/usr/bin/env node
/**
 * npm run build:native — builds the optional eBPF addon in native/build/:
 *   vmlinux.h        generated from this kernel's BTF (/sys/kernel/btf/vmlinux) with bpftool;
 *   tls.bpf.o        the CO-RE BPF program (clang -target bpf);
 *   conn.bpf.o       which process holds each end of a TCP connection (tracepoints, CO-RE);
 *   tc.bpf.o         the TC clsact packet source (ingress and egress classifiers);
 *   tapwire_bpf.node the N-API addon (C, linked with -lbpf -lelf -lz -lpcap);
 *   tls-gen          a synthetic SSL_write/SSL_read caller for bench/tls-ring.mjs.
 * The addon is optional like `cap`: when clang, bpftool, libbpf's headers, libelf/zlib, Node's
 * headers or BTF are missing, this prints exactly what is missing and exits 0, so that `npm ci`
 * and offline use never depend on it. With --require it exits 1 instead.
 * Node's headers: $npm_config_nodedir/include/node, then <node prefix>/include/node, then
 * /usr/include/node.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'native');
const out = join(src, 'build');
const requireBuild = process.argv.includes('--require');
const quiet = process.argv.includes('--quiet');

function which(name, extra = []) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin', ...extra];
  for (const d of dirs) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

function pkgConfig(args) {
  const r = spawnSync('pkg-config', args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const missing = [];
const clang = which('clang');
if (!clang) missing.push('clang (apt-get install clang llvm)');
const bpftool = which('bpftool');
if (!bpftool) missing.push('bpftool (apt-get install bpftool; on Ubuntu linux-tools-$(uname -r))');
const cc = which('cc') ?? which('gcc') ?? clang;
if (!cc) missing.push('a C compiler (cc, gcc or clang)');
const hasPkgConfig = Boolean(which('pkg-config'));
const libbpfHeaders = ['/usr/include/bpf/bpf_helpers.h', '/usr/local/include/bpf/bpf_helpers.h'].some((p) => existsSync(p)) ||
  (hasPkgConfig && pkgConfig(['--exists', 'libbpf']) !== undefined);
if (!libbpfHeaders) missing.push("libbpf's headers and library (apt-get install libbpf-dev)");
// libpcap compiles the agent's capture filter for TLS plaintext (filterMatches), as it does for packets.
if (!existsSync('/usr/include/pcap/pcap.h') && !(hasPkgConfig && pkgConfig(['--exists', 'libpcap']) !== undefined)) missing.push('libpcap (apt-get install libpcap-dev)');
if (hasPkgConfig) {
  if (pkgConfig(['--exists', 'libelf']) === undefined) missing.push('libelf (apt-get install libelf-dev)');
  if (pkgConfig(['--exists', 'zlib']) === undefined) missing.push('zlib (apt-get install zlib1g-dev)');
} else if (!existsSync('/usr/include/libelf.h') || !existsSync('/usr/include/zlib.h')) {
  missing.push('libelf and zlib headers (apt-get install libelf-dev zlib1g-dev pkg-config)');
}
const nodeIncludeCandidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
].filter(Boolean);
const nodeInclude = nodeIncludeCandidates.find((d) => existsSync(join(d, 'node_api.h')));
if (!nodeInclude) missing.push(`Node's headers (node_api.h; looked in ${nodeIncludeCandidates.join(', ')}; set npm_config_nodedir)`);
const btf = '/sys/kernel/btf/vmlinux';
if (!existsSync(btf)) missing.push(`kernel BTF (${btf}: the kernel needs CONFIG_DEBUG_INFO_BTF=y)`);

if (missing.length) {
  const msg = `build:native: the eBPF addon is not built (it is optional; TLS uprobes stay unavailable). Missing: ${missing.join('; ')}.`;
  console.error(msg);
  process.exit(requireBuild ? 1 : 0);
}

const archDefine = { x64: 'x86', arm64: 'arm64', s390x: 's390', ppc64: 'powerpc', riscv64: 'riscv' }[process.arch];
if (!archDefine) {
  console.error(`build:native: no BPF target arch for ${process.arch}`);
  process.exit(requireBuild ? 1 : 0);
}

function run(cmd, args, opts = {}) {
  if (!quiet) console.log(`  ${[cmd, ...args].join(' ')}`);
  return execFileSync(cmd, args, { stdio: ['ignore', opts.capture ? 'pipe' : 'inherit', 'inherit'], maxBuffer: 64 << 20 });
}

try {
  const t0 = performance.now();
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'vmlinux.h'), run(bpftool, ['btf', 'dump', 'file', btf, 'format', 'c'], { capture: true }));
  for (const prog of ['tls', 'conn', 'tc']) {
    run(clang, ['-O2', '-g', '-target', 'bpf', `-D__TARGET_ARCH_${archDefine}`, `-I${out}`, `-I${src}`, '-c', join(src, `${prog}.bpf.c`), '-o', join(out, `${prog}.bpf.o`)]);
  }
  const libs = (hasPkgConfig && pkgConfig(['--libs', 'libbpf', 'libelf', 'zlib'])?.split(/\s+/)) || ['-lbpf', '-lelf', '-lz'];
  const cflags = (hasPkgConfig && pkgConfig(['--cflags', 'libbpf'])?.split(/\s+/).filter(Boolean)) || [];
  run(cc, ['-O2', '-Wall', '-shared', '-fPIC', '-DNODE_GYP_MODULE_NAME=tapwire_bpf', `-I${nodeInclude}`, `-I${src}`, ...cflags,
    join(src, 'addon.c'), join(src, 'pcapfilter.c'), join(src, 'netlink.c'), '-o', join(out, 'tapwire_bpf.node'), ...libs, '-lpcap', '-lpthread']);
  run(cc, ['-O2', '-o', join(out, 'tls-gen'), join(src, 'tls-gen.c')]);
  console.log(`build:native: built native/build/{tls.bpf.o,conn.bpf.o,tc.bpf.o,tapwire_bpf.node,tls-gen} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
} catch (e) {
  console.error(`build:native: the build failed: ${e.message.split('\n')[0]}`);
  process.exit(requireBuild ? 1 : 0);
}
