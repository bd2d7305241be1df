/**
 * Builds test/agent/pods/go-tls (a Go https server and client, standard library only) with each Go
 * toolchain found: the current `go` on PATH, Debian's older one (apt-get install golang-go:
 * /usr/lib/go-1.19/bin/go), and a stripped build (-ldflags='-s -w': no .symtab) with the current
 * one. Builds are made once per test process, in a temporary directory. Offline: GOFLAGS=-mod=mod,
 * GOTOOLCHAIN=local (no toolchain download), no external modules.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface GoBuild {
  /** go1.26, go1.19, stripped … */
  name: string;
  path: string;
  goVersion: string;
  stripped: boolean;
}

let arm64: string | undefined | null;

/** The peer cross-compiled for arm64 with the current Go (GOARCH=arm64: no toolchain needed beyond Go's own), or undefined. */
export function goArm64Build(): string | undefined {
  if (arm64 !== undefined) return arm64 ?? undefined;
  const path = join(mkdtempSync(join(tmpdir(), 'tapwire-gotls-arm64-')), 'gotls');
  const r = spawnSync('go', ['build', '-o', path, '.'], { cwd: GO_PEER_DIR, env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOARCH: 'arm64' } });
  arm64 = r.status === 0 ? path : null;
  return arm64 ?? undefined;
}

export const GO_PEER_DIR = resolve(import.meta.dirname, '..', '..', 'agent', 'pods', 'go-tls');
const OLD_GO = '/usr/lib/go-1.19/bin/go';

let built: { builds: GoBuild[]; missing: string[] } | undefined;

function goVersionOf(go: string): string | undefined {
  const r = spawnSync(go, ['env', 'GOVERSION'], { encoding: 'utf8', env: { ...process.env, GOTOOLCHAIN: 'local' } });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Every build that could be made, and in words each that could not. */
export function goBuilds(): { builds: GoBuild[]; missing: string[] } {
  if (built) return built;
  const out = mkdtempSync(join(tmpdir(), 'tapwire-gotls-'));
  const builds: GoBuild[] = [];
  const missing: string[] = [];
  const make = (name: string, go: string, version: string, stripped: boolean) => {
    const path = join(out, name);
    const args = ['build', '-o', path, ...(stripped ? ['-ldflags=-s -w'] : []), '.'];
    const r = spawnSync(go, args, { cwd: GO_PEER_DIR, encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' } });
    if (r.status !== 0) missing.push(`${go} build failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    else builds.push({ name, path, goVersion: version, stripped });
  };
  const current = goVersionOf('go');
  if (current) {
    make(current.replace(/^(go1\.\d+).*/, '$1'), 'go', current, false);
    make('stripped', 'go', current, true);
  } else missing.push('no go on PATH');
  const old = existsSync(OLD_GO) ? goVersionOf(OLD_GO) : undefined;
  if (old) make(old.replace(/^(go1\.\d+).*/, '$1'), OLD_GO, old, false);
  else missing.push(`no ${OLD_GO} (apt-get install golang-go)`);
  built = { builds, missing };
  return built;
}
