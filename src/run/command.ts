import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { groupRunning } from './process-group.js';

/**
 * The test command of a run: an argv run directly (`tapwire run -- npm test`), or a string run by
 * `/bin/sh -c` (run_and_verify's `command`). It runs in a process group of its own, so a timeout
 * or a cancel stops everything it started: SIGTERM to the group, SIGKILL after a grace period.
 * After a timeout or a cancel the result comes back only once no process of the group runs.
 */
export interface CommandOptions {
  /** argv (no shell), or one string for /bin/sh -c. */
  command: readonly string[] | string;
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Killed (the whole group) after this long. */
  timeoutMs?: number;
  /** Kills the command (the whole group) when aborted. */
  signal?: AbortSignal;
  /** SIGTERM to SIGKILL, ms (default 5 000). */
  graceMs?: number;
  /** Every chunk of output as it comes, e.g. to stream it through to a terminal. */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

export interface CommandResult {
  /** Null when a signal ended it (or it never started). */
  exitCode: number | null;
  signal?: string;
  timedOut: boolean;
  cancelled: boolean;
  /** The last lines of stdout and stderr together, in arrival order (see TAIL_*). */
  tail: string;
  outputBytes: number;
  /** Epoch seconds. */
  startedAt: number;
  endedAt: number;
  /** Set when the process could not be started at all (spawn error), with why. */
  spawnError?: string;
}

/** A command that cannot be run as given: the message names it and why. */
export class CommandInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandInputError';
  }
}

/** The output kept: at most the last 64 KiB, and of that the last 40 lines. */
export const TAIL_BYTES = 64 * 1024;
export const TAIL_LINES = 40;
const DEFAULT_GRACE_MS = 5000;
/**
 * After the command exits, how long its output pipes may stay open: a background process it left
 * holds them. Past this the group is sent SIGTERM and the pipes are let go.
 */
const PIPE_GRACE_MS = 500;
/** After a kill, how often the end of the group is looked for, and how long a SIGKILL may take. */
const GROUP_POLL_MS = 25;
const KILL_WAIT_MS = 1000;

/** Human form of a command: argv joined with spaces (quoted where needed), or the shell string. */
export function commandText(command: readonly string[] | string): string {
  if (typeof command === 'string') return command;
  return command.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * Checks, before any capture starts, that the command can be started: cwd is a directory, the
 * command is not empty, and an argv's program exists and is executable (found on PATH when it
 * has no slash). A shell string is the shell's to judge (127 then means "not found").
 */
export function checkCommand(command: readonly string[] | string, cwd: string, env: NodeJS.ProcessEnv = process.env): void {
  let st;
  try {
    st = statSync(cwd);
  } catch {
    throw new CommandInputError(`cwd: no such directory: ${cwd}`);
  }
  if (!st.isDirectory()) throw new CommandInputError(`cwd: not a directory: ${cwd}`);
  if (typeof command === 'string') {
    if (command.trim() === '') throw new CommandInputError('command: empty');
    return;
  }
  const prog = command[0];
  if (prog === undefined || prog === '') throw new CommandInputError('command: empty (give it after --, e.g. tapwire run -- npm test)');
  const candidates = prog.includes('/') ? [isAbsolute(prog) ? prog : resolve(cwd, prog)]
    : (env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(resolve(cwd, d), prog));
  let found: string | undefined;
  for (const c of candidates) {
    try {
      if (!statSync(c).isFile()) continue;
    } catch {
      continue;
    }
    found = c;
    try {
      accessSync(c, constants.X_OK);
      return;
    } catch { /* try the next one on PATH, as the shell does */ }
  }
  throw new CommandInputError(found ? `command not executable: ${found}` : `command not found: ${prog}`);
}

/** Runs the command to its end (or its kill) and says how it ended, with the tail of its output. */
export function runCommand(o: CommandOptions): Promise<CommandResult> {
  const startedAt = Date.now() / 1000;
  const tail = new Tail();
  const [file, args] = typeof o.command === 'string' ? ['/bin/sh', ['-c', o.command]] : [o.command[0]!, o.command.slice(1)];
  // Cancelled before it started (while capture was opening): never start it.
  if (o.signal?.aborted) {
    return Promise.resolve({ exitCode: null, timedOut: false, cancelled: true, tail: '', outputBytes: 0, startedAt, endedAt: startedAt });
  }
  return new Promise((done) => {
    let timedOut = false, cancelled = false, spawnError: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    /** Epoch ms the group's SIGKILL is due at: set once a timeout or a cancel started a kill. */
    let killAt: number | undefined;
    // detached: the child leads a new process group (and session), which a kill addresses as -pid.
    const child = spawn(file, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch { /* the group is gone */ }
    };
    const stop = () => {
      killGroup('SIGTERM');
      killAt ??= Date.now() + (o.graceMs ?? DEFAULT_GRACE_MS);
      killTimer ??= setTimeout(() => killGroup('SIGKILL'), killAt - Date.now());
    };
    const timeout = o.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      stop();
    }, o.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      stop();
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    for (const name of ['stdout', 'stderr'] as const) {
      child[name].on('data', (c: Buffer) => {
        tail.add(c);
        o.onOutput?.(c, name);
      });
    }
    let exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timeout);
      o.signal?.removeEventListener('abort', onAbort);
      const result: CommandResult = {
        exitCode: exit?.code ?? null, ...(exit?.signal ? { signal: exit.signal } : {}), timedOut, cancelled,
        tail: tail.text(), outputBytes: tail.total, startedAt, endedAt: exit?.at ?? Date.now() / 1000, ...(spawnError ? { spawnError } : {}),
      };
      const pgid = child.pid;
      if (killAt === undefined || pgid === undefined) {
        done(result);
        return;
      }
      // A kill started: the leader may have died of the SIGTERM and the pipes been let go while a
      // member that ignores SIGTERM still runs. Returning now would leave it running for good (the
      // caller exits); so the group's end is waited for, and the SIGKILL timer left to fire.
      const giveUpAt = killAt + KILL_WAIT_MS;
      const over = () => {
        if (groupRunning(pgid) && Date.now() < giveUpAt) return false;
        clearTimeout(killTimer);
        done(result);
        return true;
      };
      if (over()) return;
      const poll = setInterval(() => over() && clearInterval(poll), GROUP_POLL_MS);
    };
    child.on('error', (e) => {
      // Only a spawn failure (ENOENT, EACCES) gets here with no exit: report it as the command's failure.
      spawnError = `${file}: ${(e as NodeJS.ErrnoException).code ?? e.message}`;
      if (!exit) finish();
    });
    child.on('exit', (code, signal) => {
      // The end is when the command exited, not when its pipes closed.
      exit = { code, signal, at: Date.now() / 1000 };
      // Leftovers holding the pipes are the command's: they get the grace period, then SIGTERM.
      const leftovers = setTimeout(() => {
        killGroup('SIGTERM');
        child.stdout.destroy();
        child.stderr.destroy();
      }, PIPE_GRACE_MS);
      child.once('close', () => {
        clearTimeout(leftovers);
        finish();
      });
    });
  });
}

/** The last TAIL_BYTES of output, as chunks; text() decodes and keeps the last TAIL_LINES lines. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  total = 0;

  add(c: Buffer): void {
    this.chunks.push(c);
    this.bytes += c.length;
    this.total += c.length;
    while (this.bytes - this.chunks[0]!.length >= TAIL_BYTES) this.bytes -= this.chunks.shift()!.length;
  }

  text(): string {
    let b = Buffer.concat(this.chunks);
    if (b.length > TAIL_BYTES) b = b.subarray(b.length - TAIL_BYTES);
    const lines = b.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-TAIL_LINES).join('\n');
  }
}
