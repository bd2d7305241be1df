import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseListen, parseRetention } from '../../src/cli/agent.js';
import { liveCaptureUnavailable } from '../../src/capture/live.js';

/** `tapwire agent` refuses bad starts with exit 2 and one line naming the flag and the problem. */
const agent = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', 'agent', '--data-dir', mkdtempSync(join(tmpdir(), 'tapwire-agent-cli-')), ...args],
    { encoding: 'utf8', timeout: 20_000, env: { ...process.env, TAPWIRE_TOKEN: '', ...env } });
  return { status: r.status, stderr: r.stderr };
};

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
});

describe('tapwire agent: bad starts', () => {
  it('listening beyond loopback without a token is refused', () => {
    const r = agent(['--listen', '0.0.0.0:0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('tapwire agent: --listen 0.0.0.0:0 is not loopback: give a token with --token or TAPWIRE_TOKEN\n');
  });

  it('a bad --retention or --listen names the part that is wrong', () => {
    expect(agent(['--retention', '2 parsecs/1h'])).toEqual({ status: 2, stderr: 'tapwire agent: --retention "2 parsecs/1h": "2 parsecs" is not a size (e.g. 2GiB, 500MB)\n' });
    expect(agent(['--listen', 'localhost'])).toEqual({ status: 2, stderr: 'tapwire agent: --listen "localhost": expected host:port, e.g. 127.0.0.1:8899\n' });
  });

  const notRoot = process.getuid?.() !== 0 ? 'needs root (libpcap opens the interface)' : liveCaptureUnavailable();
  if (notRoot) console.warn(`test/cli/agent-cli.test.ts: skipping the interface and filter checks: ${notRoot}`);
  it.skipIf(notRoot !== '')('an interface that does not exist, and a bad BPF filter, are named (root: libpcap)', () => {
    const nope = agent(['--interface', 'nope0', '--listen', '127.0.0.1:0']);
    expect(nope.status).toBe(2);
    expect(nope.stderr).toMatch(/^tapwire agent: nope0: no such device/);
    const bpf = agent(['--interface', 'lo', '--filter', 'tcp port and', '--listen', '127.0.0.1:0']);
    expect(bpf.status).toBe(2);
    expect(bpf.stderr).toMatch(/bad BPF filter/);
  });
});

describe('flag parsing', () => {
  it('retention takes size, age or both', () => {
    expect(parseRetention('2GiB/24h')).toEqual({ maxBytes: 2 * 1024 ** 3, maxAgeSec: 86400 });
    expect(parseRetention('500MB')).toEqual({ maxBytes: 500e6, maxAgeSec: 86400 });
    expect(parseRetention('/90m')).toEqual({ maxBytes: 1024 ** 3, maxAgeSec: 5400 });
    expect(() => parseRetention('1GiB/2h/3d')).toThrow(/expected <size>\/<age>/);
    expect(() => parseRetention('/3 fortnights')).toThrow(/is not an age/);
  });
  it('listen takes host:port, [v6]:port and :port', () => {
    expect(parseListen('127.0.0.1:8899')).toEqual({ host: '127.0.0.1', port: 8899 });
    expect(parseListen('[::1]:9000')).toEqual({ host: '::1', port: 9000 });
    expect(parseListen(':8899')).toEqual({ host: '127.0.0.1', port: 8899 });
    expect(() => parseListen('127.0.0.1:99999')).toThrow(/expected host:port/);
  });
});
