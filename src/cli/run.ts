import { join } from 'node:path';
import { CaptureOpenError } from '../capture/index.js';
import { AgentClient, AgentClientError } from '../client/index.js';
import { FilterError } from '../query/index.js';
import { AgentBackend, CommandInputError, exitText, LocalBackend, RUN_EXIT, runAndVerify, runExitCode, snapshotsDir, type Backend, type RunResult } from '../run/index.js';
import { SpecError, verdictText } from '../verify/index.js';
import { CLI_DEFAULTS } from './defaults.js';
import { terminalWidth } from './output.js';
import { fitToWidth, plural } from '../common/index.js';

export interface RunCliOptions {
  spec?: string;
  interface?: string;
  filter?: string;
  api?: string;
  token?: string;
  dataDir?: string;
  timeout?: number;
  format: 'text' | 'json';
  maxEvidence?: number;
  quiet?: boolean;
}

/**
 * `tapwire run -- <command…>`: capture (local, or through an agent) while the command runs, then
 * verify its traffic. The command's output streams through (to stderr with --format json, so
 * stdout is the JSON alone). Returns the exit status (RUN_EXIT).
 */
export async function runRun(command: string[], o: RunCliOptions): Promise<number> {
  const usage = runUsage(command, o);
  if (usage) return badInput(usage);
  let backend: Backend;
  try {
    backend = o.api !== undefined ? new AgentBackend(new AgentClient(o.api, o.token)) : new LocalBackend({ dataDir: o.dataDir, iface: o.interface ?? CLI_DEFAULTS.localInterface });
  } catch (e) {
    if (e instanceof AgentClientError) return badInput(e.message);
    throw e;
  }
  // Ctrl-C (or a CI job's SIGTERM) cancels: the command's process group is stopped, the
  // snapshot closed and the run kept as cancelled. A second signal is the default: exit now.
  const cancel = new AbortController();
  const onSignal = () => cancel.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const echo = o.quiet ? undefined : (c: Buffer, stream: 'stdout' | 'stderr') => (o.format === 'json' || stream === 'stderr' ? process.stderr : process.stdout).write(c);
  let result: RunResult;
  try {
    result = await runAndVerify({
      backend, command, spec: o.spec === undefined ? undefined : { file: o.spec }, timeoutSec: o.timeout,
      iface: o.api === undefined ? o.interface ?? CLI_DEFAULTS.localInterface : undefined, bpf: o.filter, maxEvidence: o.maxEvidence, onOutput: echo,
    }, { signal: cancel.signal });
  } catch (e) {
    if (e instanceof SpecError) return badInput(`spec ${e.message}`);
    if (e instanceof CommandInputError || e instanceof CaptureOpenError || e instanceof AgentClientError || e instanceof FilterError) return badInput(e.message);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await backend.close();
  }
  for (const w of result.warnings) process.stderr.write(`tapwire: run: ${w}\n`);
  process.stdout.write(o.format === 'json' ? `${JSON.stringify(result, null, 2)}\n` : fitToWidth(summaryText(result, backend, o), terminalWidth()));
  return runExitCode(result);
}

/** Flags that contradict each other; undefined when the invocation makes sense. */
function runUsage(command: string[], o: RunCliOptions): string | undefined {
  if (command.length === 0) return 'give the command to run after --, e.g. tapwire run -- npm test';
  if (o.api !== undefined) {
    if (o.interface !== undefined) return '--interface applies to a local capture; the agent at --api captures on the interfaces it was started with';
    if (o.filter !== undefined) return '--filter (BPF) applies to a local capture; the agent at --api captures with the filter it was started with';
    if (o.dataDir !== undefined) return '--data-dir applies to a local capture; with --api the agent keeps snapshots and runs';
  }
  return undefined;
}

function badInput(message: string): number {
  process.stderr.write(`tapwire: run: ${message}\n`);
  return RUN_EXIT.badInput;
}

/** After the command's own output: how it ended, the verdict, and where to look further. */
function summaryText(r: RunResult, backend: Backend, o: RunCliOptions): string {
  const id = r.run.snapshot!;
  const where = backend instanceof LocalBackend
    ? `  flows and packets kept in ${join(snapshotsDir(backend.dataDir), id)} (tapwire mcp: get_flow, export_pcap, verify with snapshot "${id}")`
    : `  drill in: tapwire verify --api ${o.api} --snapshot ${id}    (curl ${o.api}/api/snapshots/${id}/pcap -o run.pcap)`;
  return [
    '',
    `tapwire run: ${exitText(r.run)}`,
    verdictText(r.verdict, o.maxEvidence).trimEnd(),
    `snapshot ${id}: ${plural(r.run.flows, 'flow')}${r.run.drained ? `, drain ${r.run.drained}` : ''}; ${backend.describe()}`,
    where,
    r.kept ? `run ${r.run.id} kept (run_history, runs_touching)` : `run ${r.run.id} not kept (see above)`,
    '',
  ].join('\n');
}
