/**
 * The client library costs about 30 MB of heap and 0.3 s to load: commands that do not use
 * Kubernetes must not load it, though src/enrich/index.ts re-exports this folder. A loader hook
 * reports any module of @kubernetes/client-node that is resolved.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { backoffDelay } from '../../../src/enrich/kubernetes/informer.js';

const dir = mkdtempSync(join(tmpdir(), 'tapwire-lazy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hook = join(dir, 'hook.mjs');
writeFileSync(hook, `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`export async function resolve(s, c, next) {
  const r = await next(s, c);
  if (r.url.includes('@kubernetes/client-node')) process.stderr.write('LOADED ' + r.url + '\\\\n');
  return r;
}\`));
`);

/** What the hook reported (stderr) while node ran `args`. */
function loaded(args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(hook).href, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  return r.stderr;
}

describe('@kubernetes/client-node is loaded only when asked for', () => {
  it('not by `tapwire --help`, `tapwire analyze --help`, nor by importing enrich/', () => {
    const main = resolve('dist/cli/main.js');
    for (const args of [[main, '--help'], [main, 'analyze', '--help'], ['-e', `import(${JSON.stringify(pathToFileURL(resolve('dist/enrich/index.js')).href)})`]]) {
      expect(loaded(args), args.join(' ')).not.toContain('LOADED');
    }
  });

  it('by loadKubeConfig (the hook sees it, so the check above can fail)', () => {
    const kc = join(dir, 'kc.yaml');
    writeFileSync(kc, 'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n');
    const url = pathToFileURL(resolve('dist/enrich/index.js')).href;
    expect(loaded(['-e', `import(${JSON.stringify(url)}).then((m) => m.loadKubeConfig({ kubeconfig: ${JSON.stringify(kc)} }))`])).toContain('LOADED');
  });
});

describe('reconnect backoff', () => {
  it('grows exponentially to its cap, with half of each step random (fast-check)', () => {
    fc.assert(fc.property(fc.nat(40), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (n, r) => {
      const step = Math.min(30_000, 500 * 2 ** n);
      const d = backoffDelay(n, 500, 30_000, () => r);
      expect(d).toBeGreaterThanOrEqual(step / 2);
      expect(d).toBeLessThanOrEqual(step);
    }));
    expect([0, 1, 2, 3, 10].map((n) => backoffDelay(n, 500, 30_000, () => 1))).toEqual([500, 1000, 2000, 4000, 30_000]);
    expect(backoffDelay(0, 500, 30_000, () => 0)).toBe(250);
  });
});
