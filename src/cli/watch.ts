import { setTimeout as sleep } from 'node:timers/promises';
import { CaptureOpenError } from '../capture/index.js';
import { AgentClientError, SseError } from '../client/index.js';
import { RemoteSource, type FlowEvent, type FlowSubscription } from '../service/index.js';
import { Redactor } from '../flows/index.js';
import { DEFAULT_BODY_LIMIT, loadRedactKey } from '../pipeline/index.js';
import { Recorder } from '../live/index.js';
import { loadSpecFile, SpecError } from '../verify/index.js';
import { Watcher, type StandingSpec, type VerdictChange } from '../watch/index.js';
import { apiFlows } from './source.js';
import { CLI_DEFAULTS } from './defaults.js';

export interface WatchCliOptions {
  spec: string[];
  api?: string;
  token?: string;
  interface: string[];
  filter?: string;
  window: string;
  format: 'text' | 'json';
}

/** Wait after the agent's flow stream ends before asking again. */
const RECONNECT_MS = 2000;

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `5m`, `300s`, `300`, `1.5h` → seconds. Throws naming the flag. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(v.trim());
  const unit = m ? m[2]!.toLowerCase() || 's' : '';
  if (!m || !(unit in DURATION_UNITS) || Number(m[1]) <= 0) throw new Error(`${flag} "${v}": expected a duration such as 5m, 300s or 1h`);
  return Number(m[1]) * DURATION_UNITS[unit]!;
}

/**
 * The `--spec` files, loaded. A bad one prints `tapwire: spec <file>: <field>: <problem>` and
 * gives undefined: the caller exits 2 before anything starts.
 */
export async function loadStandingSpecs(files: readonly string[]): Promise<StandingSpec[] | undefined> {
  const out: StandingSpec[] = [];
  for (const file of files) {
    try {
      out.push({ file, spec: await loadSpecFile(file) });
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      process.stderr.write(`tapwire: spec ${e.message}\n`);
      return undefined;
    }
  }
  return out;
}

/**
 * `tapwire watch`: standing specs judged over a sliding window of live flows, from a running
 * agent (--api) or a local capture, printing each verdict change as one line until SIGINT or
 * SIGTERM. Returns the exit status: 0 after a signal, 2 for bad input or a source that cannot start.
 */
export async function runWatch(o: WatchCliOptions): Promise<number> {
  const usage = o.spec.length === 0 ? 'give at least one --spec FILE'
    : o.api !== undefined && (o.interface.length > 0 || o.filter !== undefined) ? '--interface and --filter are for a local capture; with --api the agent captures'
      : o.api === undefined && o.token !== undefined ? '--token goes with --api' : undefined;
  if (usage) return fail(usage);
  let windowSec: number;
  try {
    windowSec = parseDuration('--window', o.window);
  } catch (e) {
    return fail((e as Error).message);
  }
  const specs = await loadStandingSpecs(o.spec);
  if (!specs) return 2;

  let recorder: Recorder | undefined;
  // Flow times come from the capture clock (the agent's, or the local capture's): the window slides on it.
  const watcher = new Watcher({ specs, windowSec, clock: () => recorder?.now() ?? Date.now() / 1000 });
  watcher.subscribe((c) => process.stdout.write(line(c, o.format)));
  const stop = new AbortController();
  let source: string;
  if (o.api !== undefined) {
    if (!(await followAgent(o.api, o.token, watcher, stop.signal))) return 2;
    source = `the agent at ${o.api}`;
  } else {
    const interfaces = o.interface.length ? o.interface : [...CLI_DEFAULTS.captureInterfaces];
    try {
      recorder = Recorder.start({ interfaces, filter: o.filter, bodyLimit: DEFAULT_BODY_LIMIT, redactor: new Redactor({ key: loadRedactKey().key }), onRecord: (r) => watcher.add(r) });
    } catch (e) {
      if (!(e instanceof CaptureOpenError)) throw e;
      return fail(`${e.message}${e.reason === 'permission-denied' || e.reason === 'unavailable' ? '; or watch a running agent with --api URL' : ''}`);
    }
    source = `a capture on ${interfaces.join(', ')}`;
  }
  process.stderr.write(`tapwire watch: ${specs.length} spec${specs.length > 1 ? 's' : ''} over the last ${o.window} of flows from ${source}; Ctrl-C stops\n`);
  watcher.evaluate();
  watcher.start();
  // Only now: a signal while starting (an agent that does not answer) keeps its default, ending the process.
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  stop.abort();
  watcher.stop();
  recorder?.stop();
  return 0;
}

function line(c: VerdictChange, format: 'text' | 'json'): string {
  return format === 'json' ? `${JSON.stringify(c)}\n` : `${new Date(c.at * 1000).toISOString()} ${c.summary}\n`;
}

function fail(msg: string): number {
  process.stderr.write(`tapwire watch: ${msg}\n`);
  return 2;
}

/**
 * Feeds the watcher from a running agent: subscribes to its stream of new flows first (the
 * RemoteSource's), then reads the flows already in the window, so no flow falls between the two
 * (one seen twice is held once). When the stream ends (the agent restarted), it reconnects and
 * reads the window again. False, after saying why, when the agent cannot be reached at the start.
 */
async function followAgent(url: string, token: string | undefined, watcher: Watcher, signal: AbortSignal): Promise<boolean> {
  let source: RemoteSource;
  try {
    source = RemoteSource.open(url, token);
  } catch (e) {
    if (!(e instanceof AgentClientError)) throw e;
    fail(e.message);
    return false;
  }
  const take = (e: FlowEvent) => ('flow' in e ? watcher.add(e.flow) : watcher.lost(e.dropped));
  const connect = async (): Promise<FlowSubscription | undefined> => {
    const sub = await source.subscribe(take);
    const flows = await apiFlows({ url, token, since: String(Date.now() / 1000 - watcher.windowSec) });
    if (!flows) {
      sub.close();
      return undefined;
    }
    for (const r of flows) watcher.add(r);
    return sub;
  };
  let sub: FlowSubscription | undefined;
  try {
    sub = await connect();
  } catch (e) {
    if (!(e instanceof SseError)) throw e;
    fail(`--api: ${e.message}`);
  }
  if (!sub) return false;
  signal.addEventListener('abort', () => sub?.close(), { once: true });
  void (async () => {
    for (;;) {
      let why = 'the agent ended it';
      try {
        await sub.ended;
      } catch (e) {
        why = (e as Error).message;
      }
      if (signal.aborted) return;
      process.stderr.write(`tapwire watch: lost the agent's flow stream (${why}); reconnecting\n`);
      let next: FlowSubscription | undefined;
      while (!next && !signal.aborted) {
        await sleep(RECONNECT_MS, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) break;
        next = await connect().catch((e: unknown) => {
          if (!(e instanceof SseError)) throw e;
          return undefined;
        });
      }
      if (!next) return;
      sub = next;
      if (signal.aborted) return sub.close();
      process.stderr.write('tapwire watch: reconnected\n');
    }
  })().catch((e: unknown) => process.stderr.write(`tapwire watch: following the agent failed: ${(e as Error).stack ?? e}\n`));
  return true;
}
