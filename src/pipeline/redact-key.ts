import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * The key Redactor (flows/redact.ts) hashes secrets with, so a secret becomes the same token in
 * every run and on both sides of a diff. Reading and keeping it is the caller's business: flows/
 * stays free of files.
 */
/** Where the redaction key comes from: TAPWIRE_REDACT_KEY, else a file made once per user. */
export function loadRedactKey(env: NodeJS.ProcessEnv = process.env): { key: Buffer; source: string; warning?: string } {
  const fromEnv = env.TAPWIRE_REDACT_KEY;
  if (fromEnv) return { key: Buffer.from(fromEnv, 'utf8'), source: 'TAPWIRE_REDACT_KEY' };
  const dir = join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'tapwire');
  const file = join(dir, 'redact.key');
  try {
    if (existsSync(file)) {
      const hex = readFileSync(file, 'utf8').trim();
      if (/^[0-9a-f]{64}$/.test(hex)) return { key: Buffer.from(hex, 'hex'), source: file };
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const key = randomBytes(32);
    writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'w' });
    chmodSync(file, 0o600);
    return { key, source: file };
  } catch (err) {
    // Still redact, but tokens will not match across runs: say so.
    return {
      key: randomBytes(32),
      source: 'ephemeral',
      warning: `cannot keep a redaction key in ${file} (${(err as NodeJS.ErrnoException).code ?? err}); using a per-run key, so redacted tokens differ between runs. Set TAPWIRE_REDACT_KEY to fix.`,
    };
  }
}

