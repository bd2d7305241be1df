import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { FlowRecord } from '../../src/flows/record.js';

/**
 * `tapwire agent` as a child process, started the way a user starts it (dist/cli/main.js: run
 * `npm run build` first), for the tests that watch it from outside through its HTTP API.
 * The agent prints "API on http://…;" on stderr once it listens; that line gives the base URL.
 */
export interface AgentProcess {
  /** The API's base URL, e.g. http://127.0.0.1:40123. */
  base: string;
  child: ChildProcess;
  /** Everything the agent wrote to stderr so far (read it again for what came later). */
  log(): string;
  /** SIGTERM, then resolves once the agent has exited; again after that, resolves at once. */
  stop(): Promise<void>;
}

export interface StartAgentOptions {
  /** Variables set over this process's environment for the agent. */
  env?: Record<string, string>;
  /**
   * Runs the agent through another program: `[cmd, ...argv]` goes before the CLI script in place
   * of this node (e.g. setpriv … /path/to/node), so the wrapper's last argument must be a node.
   */
  spawnVia?: readonly string[];
  /** How long to wait for the API line before giving up; 30 s by default. */
  upMs?: number;
}

/** Absolute, so the agent still finds it when run as another user or through a wrapper. */
const BIN = resolve('dist/cli/main.js');

/**
 * Starts `tapwire agent ...args` and resolves once its API line is out. Rejects with the agent's
 * log if it exits first or says nothing in `upMs`; it is stopped first in the second case, so a
 * failed start leaves nothing running.
 */
export async function startAgent(args: readonly string[], opts: StartAgentOptions = {}): Promise<AgentProcess> {
  const [cmd, ...via] = opts.spawnVia ?? [process.execPath];
  const child = spawn(cmd!, [...via, BIN, 'agent', ...args],
    { stdio: ['ignore', 'ignore', 'pipe'], env: opts.env ? { ...process.env, ...opts.env } : process.env });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  // Listened for from the start: the exit may come before anyone asks to stop.
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const upMs = opts.upMs ?? 30_000;
  const base = await new Promise<string>((res, rej) => {
    let late = false; // the exit that stop() causes is not the agent's own
    const timer = setTimeout(() => {
      late = true;
      void stop().then(() => rej(new Error(`agent not up after ${upMs / 1000} s:\n${log}`)));
    }, upMs);
    child.stderr!.on('data', () => {
      const m = /API on (http:\/\/\S+?);/.exec(log);
      if (m) { clearTimeout(timer); res(m[1]!); }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!late) rej(new Error(`agent exited ${code}:\n${log}`));
    });
  });
  return { base, child, log: () => log, stop };
}

/** The records `GET /api/flows?since=0&filter=…` gives now. */
export async function flowsNow<T extends FlowRecord = FlowRecord>(base: string, filter: string): Promise<T[]> {
  const res = await fetch(`${base}/api/flows?since=0&filter=${encodeURIComponent(filter)}`);
  return ((await res.json()) as { flows: T[] }).flows;
}

export interface FlowsWhereOptions<T> {
  /** Stop asking once this many records match; 1 by default. */
  want?: number;
  /** Stop asking once this holds of the records (in place of `want`). */
  until?: (flows: T[]) => boolean;
  /** How many times to ask at most; 50 by default. */
  tries?: number;
  /** The wait before each ask, in ms; 200 by default. */
  everyMs?: number;
}

/**
 * Asks /api/flows for `filter` until enough records match (the pipeline emits a flow some time
 * after the call that made it), waiting `everyMs` before each ask. Gives the last answer, enough
 * or not: the test says what it expected of it.
 */
export async function flowsWhere<T extends FlowRecord = FlowRecord>(base: string, filter: string, opts: FlowsWhereOptions<T> = {}): Promise<T[]> {
  const { want = 1, tries = 50, everyMs = 200 } = opts;
  const enough = opts.until ?? ((f: T[]) => f.length >= want);
  let flows: T[] = [];
  for (let i = 0; i < tries && !enough(flows); i++) {
    await new Promise((res) => setTimeout(res, everyMs));
    flows = await flowsNow<T>(base, filter);
  }
  return flows;
}
