import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

/** `analyze` and `verify` name the peers of a capture (issue 16): the built bin, real files. */
const BIN = 'dist/cli/main.js';
const DEMO = 'pcaps/demo/demo.pcap';
const dir = mkdtempSync(join(tmpdir(), 'tapwire-ids-'));

function tapwire(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: dir, TAPWIRE_REDACT_KEY: '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const IDS = join(dir, 'ids.json');
beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
  writeFileSync(IDS, JSON.stringify({
    '127.0.0.2': { name: 'orders-7c9', namespace: 'shop', workload: 'orders', service: 'orders' },
    '127.0.0.4': { name: 'db-0', namespace: 'shop', workload: 'db', service: 'postgres' },
  }));
});

describe('--identities on capture commands', () => {
  it('analyze names both peers of every flow the file knows, and the filter reads src.service', () => {
    const all = tapwire(['analyze', DEMO, '--format', 'jsonl', '--identities', IDS]);
    expect(all.status, all.stderr).toBe(0);
    const flows = all.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const toDb = flows.filter((f) => f.dst.ip === '127.0.0.4');
    expect(toDb.length).toBeGreaterThan(0);
    for (const f of toDb) expect(f.dst).toMatchObject({ name: 'db-0', namespace: 'shop', workload: 'db', service: 'postgres' });
    // Only what the file knows: the client at 127.0.0.1 stays an address.
    for (const f of flows.filter((x) => x.src.ip === '127.0.0.1')) expect(f.src.name).toBeUndefined();

    const fromOrders = tapwire(['analyze', DEMO, '--format', 'jsonl', '--identities', IDS, '--filter', 'src.service == "orders"']);
    expect(fromOrders.status, fromOrders.stderr).toBe(0);
    const picked = fromOrders.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(picked.length).toBe(flows.filter((f) => f.src.ip === '127.0.0.2').length);
    expect(picked.every((f) => f.src.service === 'orders')).toBe(true);
  });

  it('verify judges the named flows: evidence carries the names', () => {
    const r = tapwire(['verify', DEMO, '--format', 'json', '--identities', IDS]);
    expect([0, 1, 3]).toContain(r.status);
    expect(r.stdout).toContain('orders-7c9');
  });

  it('a bad identities file: exit 2 before decoding, naming the file and the entry', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ '127.0.0.2': { name: 'x', servcie: 'y' } }));
    for (const cmd of ['analyze', 'verify']) {
      const r = tapwire([cmd, DEMO, '--identities', bad]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--identities ${bad}: $["127.0.0.2"].servcie: unknown field`);
      expect(r.stdout).toBe('');
    }
  });
});
