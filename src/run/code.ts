import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';

/** Git is asked twice per run; past this it is taken as absent rather than delaying the run. */
const GIT_TIMEOUT_MS = 10_000;

/**
 * The code a run ran, when cwd is in a git work tree: HEAD, and a hash of `git diff HEAD` (the
 * uncommitted changes to tracked files; '' when there are none). Two runs with equal values ran
 * the same code, which is what lets run_history call a finding that comes and goes flaky.
 * Undefined outside a work tree, before the first commit, or without git.
 */
export async function codeVersion(cwd: string): Promise<{ commit: string; dirty: string } | undefined> {
  const head = await git(cwd, ['rev-parse', '--verify', '--quiet', 'HEAD']);
  if (!head || head.code !== 0) return undefined;
  const diff = await git(cwd, ['diff', 'HEAD', '--binary', '--no-color', '--no-ext-diff']);
  if (!diff || diff.code !== 0) return undefined;
  return { commit: head.out.toString('utf8').trim(), dirty: diff.out.length === 0 ? '' : createHash('sha256').update(diff.out).digest('hex').slice(0, 16) };
}

function git(cwd: string, args: string[]): Promise<{ code: number | null; out: Buffer } | undefined> {
  return new Promise((resolve) => {
    // GIT_OPTIONAL_LOCKS=0: a diff must not refresh (and so write) the user's index.
    const child = spawn('git', args, { cwd, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'ignore'], timeout: GIT_TIMEOUT_MS });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve({ code, out: Buffer.concat(chunks) }));
  });
}
