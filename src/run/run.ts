import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { shortHash } from '../common/index.js';
import type { FlowRecord } from '../flows/index.js';
import { findingFingerprint, loadSpecFile, parseSpec, ServiceNames, unjudged, verifyWithSpec, type Spec, type Verdict } from '../verify/index.js';
import type { Backend, RunRecord, StoppedSnapshot } from './backend.js';
import { checkCommand, CommandInputError, commandText, runCommand, type CommandResult } from './command.js';
import { codeVersion } from './code.js';
import { newRunId } from './record.js';
import { touched } from './touched.js';
import { windowContext } from './window.js';

/** A spec by file, or inline YAML/JSON text (run_and_verify's `spec`). */
export type SpecInput = { file: string } | { text: string; name?: string } | { loaded: LoadedSpec };

/** A spec already read and parsed (the MCP tool checks it first, to name `spec` in errors). */
export interface LoadedSpec { spec: Spec; name: string; hash: string }

export interface RunOptions {
  backend: Backend;
  /** argv run directly, or a string run by /bin/sh -c. */
  command: readonly string[] | string;
  /** Default: this process's cwd. */
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  spec?: SpecInput;
  timeoutSec?: number;
  /** A local capture's interface and BPF filter (an agent refuses a BPF filter). */
  iface?: string;
  bpf?: string;
  /** Evidence entries per finding in the verdict (default: the spec's, else verify's). */
  maxEvidence?: number;
  /** Each chunk of the command's output as it comes (`tapwire run` streams it through). */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

/** MCP-shaped progress: `progress` only grows; `total` is the number of phases. */
export interface RunProgress {
  progress: number;
  total: number;
  message: string;
}

export interface RunHooks {
  onProgress?: (p: RunProgress) => void;
  /** Kills the command, stops the snapshot; the run is kept, marked cancelled. */
  signal?: AbortSignal;
}

export interface RunResult {
  /** What was kept in the run log (also when cancelled). */
  run: RunRecord;
  /** The full verdict JSON of `tapwire verify` (issue 5); inconclusive, unverified, when cancelled or the snapshot could not be read. */
  verdict: Verdict;
  /** The snapshot as stopped (its window, and whether the drain was proven); absent when it could not be stopped (see warnings). */
  snapshot?: StoppedSnapshot;
  /** The last lines of the command's output (stdout and stderr together; see command.ts). */
  outputTail: string;
  /** Whether the backend kept the run (when not, warnings say why). */
  kept: boolean;
  /** What the caller should know but is not a failure: an unproven drain, a run that could not be kept. */
  warnings: string[];
  /**
   * Milliseconds per phase: opening the capture, the command, stopping the snapshot (the drain),
   * reading its flows, verifying, keeping the run. All but `command` are what the loop adds.
   */
  timings: { start: number; command: number; stop: number; read: number; verify: number; keep: number };
}

/** `tapwire run` exit statuses (issue 7); also the outcome an MCP client reads off a result. */
export const RUN_EXIT = { pass: 0, verdictFailed: 1, badInput: 2, inconclusive: 3, commandFailed: 4, bothFailed: 5, cancelled: 130 } as const;

/**
 * The exit status of a run: the command's failure is the stronger fact, so a failed command with
 * an inconclusive verdict is 4, not 3. A cancelled run is 130 (as for Ctrl-C).
 */
export function runExitCode(r: RunResult): number {
  if (r.run.cancelled) return RUN_EXIT.cancelled;
  const commandFailed = r.run.exitCode !== 0 || r.run.timedOut === true;
  if (r.verdict.verdict === 'fail') return commandFailed ? RUN_EXIT.bothFailed : RUN_EXIT.verdictFailed;
  if (commandFailed) return RUN_EXIT.commandFailed;
  return r.verdict.verdict === 'inconclusive' ? RUN_EXIT.inconclusive : RUN_EXIT.pass;
}

/** Phases, for progress: capture started, command done, drained, verified, kept. */
const PHASES = 5;
const TICK_MS = 1000;
/** What a run record keeps, so the run log stays small (record.ts refuses more). */
const KEPT_EVIDENCE = 3;
const KEPT_FINDINGS = 200;
const KEPT_TEXT = 2000;

/**
 * The run-and-verify loop: open a snapshot (the agent's, or a local capture), run the command,
 * and the moment it exits stop the snapshot — which drains the capture up to that instant, so no
 * sleep is needed — then verify the snapshot's flows exactly as `tapwire verify` does, keep the
 * run in the backend's run log, and return it with the verdict.
 *
 * Bad input (cwd, a command that cannot be found, a spec) throws CommandInputError or SpecError
 * before any capture starts; a capture that cannot open throws (CaptureOpenError,
 * AgentClientError). Once the command has started, a result comes back whatever happens — a
 * cancel, a timeout, a backend that fails to stop or read the snapshot (the verdict is then
 * inconclusive, and says why) — and the run is kept when the backend can keep it (`kept`).
 */
export async function runAndVerify(o: RunOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const cwd = resolve(o.cwd ?? process.cwd());
  checkCommand(o.command, cwd, o.env);
  if (o.timeoutSec !== undefined && !(o.timeoutSec > 0)) throw new CommandInputError(`timeout: expected a positive number of seconds, got ${o.timeoutSec}`);
  const spec = o.spec && await loadSpec(o.spec, cwd);
  const progress = progressOf(hooks.onProgress);
  const text = commandText(o.command);
  const code = codeVersion(cwd);

  progress(0, `starting capture: ${o.backend.describe()}`);
  const clock = phases();
  const { id } = await o.backend.startSnapshot({ name: `run: ${clip(text, 200)}`, iface: o.iface, bpf: o.bpf });
  let cmd: CommandResult;
  let stopped: StoppedSnapshot | undefined;
  const unverified: string[] = [];
  try {
    clock('start');
    progress(0.1, `running: ${clip(text, 200)}`);
    const began = Date.now();
    const ticker = setInterval(() => {
      const s = (Date.now() - began) / 1000;
      const n = o.backend.capturedFlows?.(id);
      // Approaches 1 and never reaches it: MCP progress must grow, and the end is not known.
      const done = o.timeoutSec ? s / o.timeoutSec : s / (s + 30);
      progress(0.1 + 0.85 * Math.min(done, 0.99), `running for ${Math.round(s)} s${n === undefined ? '' : `, ${n} flows captured`}`);
    }, TICK_MS);
    try {
      cmd = await runCommand({
        command: o.command, cwd, env: o.env, signal: hooks.signal, onOutput: o.onOutput,
        timeoutMs: o.timeoutSec === undefined ? undefined : o.timeoutSec * 1000,
      });
    } finally {
      clearInterval(ticker);
    }
    clock('command');
    progress(1, `${exitText(cmd)}; draining the capture`);
  } finally {
    // Whatever happened to the command, the capture stops: drained up to now. A backend that
    // fails here (an agent gone) leaves the run unverified, but the run is still reported.
    stopped = await o.backend.stopSnapshot(id).catch((e: Error) => {
      unverified.push(`the snapshot could not be stopped: ${e.message}`);
      return undefined;
    });
    clock('stop');
  }
  const cancelled = cmd.cancelled || hooks.signal?.aborted === true;
  const warnings: string[] = [...unverified];
  if (stopped?.drained === 'unproven') warnings.push('the drain was not proven by a marker (see live/barrier.ts): traffic of the last instant may be missing');
  if (cmd.spawnError) warnings.push(`the command could not be started: ${cmd.spawnError}`);

  let flows: FlowRecord[] = [];
  if (cancelled) unverified.unshift('cancelled: the traffic was not verified');
  else if (stopped) {
    progress(2, 'reading the snapshot');
    flows = await o.backend.snapshotFlows(id).catch((e: Error) => {
      unverified.push(`the snapshot's flows could not be read: ${e.message}`);
      warnings.push(unverified.at(-1)!);
      return [];
    });
  }
  clock('read');
  progress(3, unverified.length ? 'not verified' : `verifying ${flows.length} flows`);
  // A local capture knows what it saw but did not decode; an agent's API does not say.
  const undecoded = stopped ? o.backend.decodeCoverage?.(id) : undefined;
  // The run's window (issue 16): the cluster events and resource use of its pods, counted from
  // the command's start, and the agents a hub could not reach.
  const window = unverified.length > 0 ? undefined : await windowContext(o.backend, flows, {
    since: cmd.startedAt, until: cmd.endedAt, snapshot: id, label: 'run', partial: o.backend.partialOf?.(id),
  });
  const verdict: Verdict = unverified.length > 0
    ? unjudged(flows.length, unverified.join('; '), undecoded)
    : verifyWithSpec(flows, spec?.spec, o.maxEvidence, undecoded, window);

  clock('verify');
  const run: RunRecord = {
    id: newRunId(), startedAt: cmd.startedAt, endedAt: cmd.endedAt, command: clip(text, 8000), cwd,
    exitCode: cmd.exitCode, ...(cmd.signal ? { signal: cmd.signal } : {}),
    ...(cmd.timedOut ? { timedOut: true } : {}), ...(cancelled ? { cancelled: true } : {}),
    ...(await code.then((c) => (c ? { code: c } : {}))),
    ...(spec ? { spec: { name: spec.name, hash: spec.hash } } : {}),
    verdict: verdict.verdict, ...(verdict.reason ? { reason: clip(verdict.reason, KEPT_TEXT) } : {}),
    findings: verdict.findings.slice(0, KEPT_FINDINGS).map((f) => ({
      fingerprint: clip(findingFingerprint(f), KEPT_TEXT), kind: f.kind, severity: f.severity, summary: clip(f.summary, KEPT_TEXT),
      evidence: f.evidence.slice(0, KEPT_EVIDENCE).map((e) => ({ ...e, summary: clip(e.summary, KEPT_TEXT) })),
    })),
    snapshot: id, source: o.backend.kind, flows: flows.length,
    ...(stopped?.drained ? { drained: stopped.drained } : {}),
    // A run that captured nothing (wrong interface or filter, services not up) verified nothing.
    verified: unverified.length === 0 && !cmd.spawnError && flows.length > 0,
    touched: touched(flows, spec?.spec.names ?? new ServiceNames()),
  };
  progress(4, `keeping run ${run.id}`);
  let kept = true;
  try {
    await o.backend.addRun(run);
  } catch (e) {
    kept = false;
    warnings.push(`the run could not be kept: ${(e as Error).message}`);
  }
  clock('keep');
  progress(5, `${cancelled ? 'cancelled' : `verdict ${verdict.verdict}`}; ${exitText(cmd)}`);
  return { run, verdict, ...(stopped ? { snapshot: stopped } : {}), outputTail: cmd.tail, kept, warnings, timings: clock.timings };
}

/** Times phases in order: each call closes the phase named, from the end of the previous one. */
function phases(): ((name: keyof RunResult['timings']) => void) & { timings: RunResult['timings'] } {
  const timings = { start: 0, command: 0, stop: 0, read: 0, verify: 0, keep: 0 };
  let last = performance.now();
  return Object.assign((name: keyof RunResult['timings']) => {
    const now = performance.now();
    timings[name] = Math.round((now - last) * 10) / 10;
    last = now;
  }, { timings });
}

/** Loads a spec (SpecError names the file and field) and names it for the run log, with a hash of its text. */
async function loadSpec(s: SpecInput, cwd: string): Promise<LoadedSpec> {
  if ('loaded' in s) return s.loaded;
  if ('file' in s) {
    const path = resolve(cwd, s.file);
    const spec = await loadSpecFile(path);
    return { spec: { ...spec, source: s.file }, name: s.file, hash: shortHash(await readFile(path, 'utf8')) };
  }
  const name = s.name ?? 'inline';
  return { spec: parseSpec(s.text, name, cwd), name, hash: shortHash(s.text) };
}

/** How the command ended, in words: "the command exited 1 after 2.3 s", "… timed out …", "… was cancelled". */
export function exitText(c: Pick<CommandResult, 'exitCode' | 'signal' | 'startedAt' | 'endedAt' | 'spawnError'> & { timedOut?: boolean; cancelled?: boolean }): string {
  if (c.cancelled) return 'the command was cancelled';
  if (c.spawnError) return `the command did not start (${c.spawnError})`;
  if (c.timedOut) return `the command timed out after ${(c.endedAt - c.startedAt).toFixed(1)} s (killed${c.signal ? ` by ${c.signal}` : ''})`;
  if (c.exitCode === null) return `the command was killed by ${c.signal ?? 'a signal'}`;
  return `the command exited ${c.exitCode} after ${(c.endedAt - c.startedAt).toFixed(1)} s`;
}

function progressOf(f: ((p: RunProgress) => void) | undefined): (at: number, message: string) => void {
  let last = -1;
  return (at, message) => {
    if (!f || at <= last) return;
    last = at;
    f({ progress: at, total: PHASES, message });
  };
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
