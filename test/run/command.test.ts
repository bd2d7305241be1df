import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCommand, CommandInputError, commandText, runCommand, TAIL_BYTES, TAIL_LINES } from '../../src/run/command.js';
import { gone, ignoresTerm, survivors } from './process.js';

const cwd = process.cwd();


/** The pid a command printed as "child <pid>", once it has. */
function childPid(onPid: (pid: number) => void) {
  let text = '';
  return (c: Buffer) => {
    text += c.toString();
    const m = /child (\d+)/.exec(text);
    if (m) {
      onPid(Number(m[1]));
      text = '';
    }
  };
}

describe('runCommand', () => {
  it('runs argv without a shell and a string through /bin/sh -c, with the exit status and the output', async () => {
    const argv = await runCommand({ command: ['sh', '-c', 'echo "$1"; exit 3', 'sh', '$HOME *'], cwd });
    expect(argv).toMatchObject({ exitCode: 3, timedOut: false, cancelled: false, tail: '$HOME *' });
    const shell = await runCommand({ command: 'echo out; echo err >&2; exit 7', cwd });
    expect(shell.exitCode).toBe(7);
    expect(shell.tail.split('\n').sort()).toEqual(['err', 'out']);
    expect(shell.endedAt).toBeGreaterThanOrEqual(shell.startedAt);
    const missing = await runCommand({ command: 'no-such-command-xyz', cwd });
    expect(missing.exitCode).toBe(127);
  });

  it('keeps a bounded tail: the last 40 lines of at most the last 64 KiB, and streams every chunk', async () => {
    let streamed = 0;
    const r = await runCommand({ command: 'seq 1 5000; head -c 200000 /dev/zero | tr "\\0" x', cwd, onOutput: (c) => { streamed += c.length; } });
    expect(r.outputBytes).toBe(streamed);
    expect(r.outputBytes).toBeGreaterThan(200_000);
    expect(r.tail.length).toBeLessThanOrEqual(TAIL_BYTES);
    expect(r.tail.endsWith('x')).toBe(true);
    const lines = await runCommand({ command: 'seq 1 100', cwd });
    expect(lines.tail.split('\n')).toEqual(Array.from({ length: TAIL_LINES }, (_, i) => String(61 + i)));
  });

  it('a timeout stops the whole process group: SIGTERM, then SIGKILL for what ignores it', async () => {
    let pid = 0;
    const t0 = Date.now();
    const r = await runCommand({ command: 'trap "" TERM; sleep 60 & echo "child $!"; wait; sleep 60', cwd, timeoutMs: 300, graceMs: 300, onOutput: childPid((p) => { pid = p; }) });
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGKILL', timedOut: true, cancelled: false });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(pid).toBeGreaterThan(0);
    expect(await gone(pid)).toBe(true);
  });

  it('after a timeout or a cancel, what ignores SIGTERM is killed even when the leader died at once and the pipes were let go', async () => {
    for (const how of ['timeout', 'abort'] as const) {
      const { command, marker } = ignoresTerm();
      const ac = new AbortController();
      if (how === 'abort') setTimeout(() => ac.abort(), 300);
      const r = await runCommand({ command, cwd, graceMs: 700, ...(how === 'timeout' ? { timeoutMs: 300 } : { signal: ac.signal }) });
      expect(r).toMatchObject({ exitCode: null, signal: 'SIGTERM', timedOut: how === 'timeout', cancelled: how === 'abort' });
      // The result comes back only once the group is gone: nothing to wait for here.
      expect(survivors(marker)).toEqual([]);
    }
  });

  it('an abort stops the whole tree; an abort before the start never starts it', async () => {
    const ac = new AbortController();
    let pid = 0;
    const r = await runCommand({ command: 'sleep 60 & echo "child $!"; wait', cwd, signal: ac.signal, onOutput: childPid((p) => { pid = p; ac.abort(); }) });
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGTERM', cancelled: true, timedOut: false });
    expect(await gone(pid)).toBe(true);
    const before = await runCommand({ command: 'echo never', cwd, signal: AbortSignal.abort() });
    expect(before).toMatchObject({ cancelled: true, tail: '', outputBytes: 0 });
  });

  it('does not wait for background processes that keep the output pipes open after the command exits', async () => {
    const t0 = Date.now();
    const r = await runCommand({ command: 'sleep 30 & echo started', cwd });
    expect(r.exitCode).toBe(0);
    expect(r.tail).toBe('started');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('checkCommand: before any capture starts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tapwire-cmd-'));
  writeFileSync(join(dir, 'plain.txt'), 'x');
  writeFileSync(join(dir, 'tool.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(dir, 'tool.sh'), 0o755);
  const msg = (f: () => void) => {
    try {
      f();
      return 'ok';
    } catch (e) {
      expect(e).toBeInstanceOf(CommandInputError);
      return (e as Error).message;
    }
  };

  it('names what is wrong', () => {
    expect(msg(() => checkCommand(['no-such-command-xyz'], cwd))).toBe('command not found: no-such-command-xyz');
    expect(msg(() => checkCommand(['./plain.txt'], dir))).toBe(`command not executable: ${join(dir, 'plain.txt')}`);
    expect(msg(() => checkCommand([], cwd))).toMatch(/^command: empty/);
    expect(msg(() => checkCommand(' ', cwd))).toBe('command: empty');
    expect(msg(() => checkCommand(['true'], join(dir, 'nope')))).toBe(`cwd: no such directory: ${join(dir, 'nope')}`);
    expect(msg(() => checkCommand(['true'], join(dir, 'plain.txt')))).toBe(`cwd: not a directory: ${join(dir, 'plain.txt')}`);
  });

  it('accepts programs on PATH, relative to cwd, and any shell string', () => {
    expect(msg(() => checkCommand(['node', '-v'], cwd))).toBe('ok');
    expect(msg(() => checkCommand(['./tool.sh'], dir))).toBe('ok');
    expect(msg(() => checkCommand('no-such-command-xyz && true', cwd))).toBe('ok');
  });

  it('shows argv as a shell would read it', () => {
    expect(commandText(['npm', 'test', '--', '--grep', 'two words', "it's"])).toBe(`npm test -- --grep 'two words' 'it'\\''s'`);
    expect(commandText('make test')).toBe('make test');
  });
});
