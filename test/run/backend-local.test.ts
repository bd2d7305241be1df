import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { liveCaptureUnavailable } from '../../src/capture/live.js';
import { LocalBackend } from '../../src/run/backend-local.js';

const why = process.getuid?.() !== 0 ? 'needs root (libpcap capture on lo)' : liveCaptureUnavailable();
if (why) console.warn(`test/run/backend-local.test.ts skipped: ${why}`);

describe.skipIf(why !== '')('LocalBackend stopping a live snapshot', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tapwire-backend-local-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('two concurrent stops (and a close) share one drain: one proven result, quickly', async () => {
    const backend = new LocalBackend({ dataDir, redactKey: Buffer.from('k') });
    // A filter that no other traffic on lo passes: the drain marker is let through it.
    const { id } = await backend.startSnapshot({ name: 'stopped twice', bpf: 'tcp port 9' });
    const t0 = Date.now();
    const [a, b] = await Promise.all([backend.stopSnapshot(id), backend.stopSnapshot(id), backend.close()]);
    // A second drain would wait out the drain timeout (2 s) for a marker the stopped capture never sees.
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(a).toMatchObject({ id, open: false, drained: 'proven' });
    expect(b).toBe(a);
    // Once stopped, a later stop returns the kept snapshot (no drain left to prove).
    expect(await backend.stopSnapshot(id)).toMatchObject({ id, open: false, until: a.until });
  });
});
