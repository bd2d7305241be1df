#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
// Commands are loaded when run: each pulls in its own part of tapwire (the MCP SDK, CEL, the
// decoders), and `tapwire --help` or a bad flag should not wait for all of them.
import type { AgentCliOptions } from './agent.js';
import type { McpCliOptions } from './mcp.js';
import type { RunCliOptions } from './run.js';
import type { WatchCliOptions } from './watch.js';
import { CLI_DEFAULTS } from './defaults.js';

function positiveInt(name: string, unit = '') {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be a whole number${unit}, got "${v}"`);
    return Number(v);
  };
}

/** A repeatable option's collector. No default array is given, so help shows none ("[]" would say nothing). */
const repeatable = (v: string, prev?: string[]): string[] => [...(prev ?? []), v];

const program = new Command();
program
  .name('tapwire')
  .description('Checks what code actually did on the network.')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

program
  .command('analyze')
  .description('Decode a pcap or pcapng file ("-" for stdin) into flow records')
  .argument('<file>', 'capture file, or - for standard input')
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'jsonl', 'har']).default('table'))
  .option('--wide', 'table: lines uncut (by default a table on a terminal is fitted to its width)')
  .option('--body-limit <bytes>', 'body bytes kept per message', positiveInt('--body-limit', ' of bytes'), CLI_DEFAULTS.bodyLimit)
  .option('--no-redact', 'keep secrets (Authorization, cookies, keys, tokens) in the output')
  .option('--redact-header <name...>', 'more header names to redact')
  .option('--no-progress', 'no progress bar, even on a terminal')
  .option('--stats <file>', 'write a JSON summary of the run (counts, violations, seconds, peak RSS)')
  .option('--proto <path>', '.proto file or directory for decoding gRPC messages (repeatable)', repeatable)
  .option('--max-messages <n>', 'gRPC messages kept per direction of a call', positiveInt('--max-messages'), CLI_DEFAULTS.maxMessages)
  .option('--redact-params', 'replace SQL bind parameters (PostgreSQL and MySQL executes) with keyed-hash tokens')
  .option('--filter <expr>', 'output only the flows this CEL expression matches, e.g. \'http && response.status >= 500\'')
  .option('--identities <file>', 'JSON map of ip → { name, namespace, workload, node, service }: names the peers')
  .option('--kubeconfig <file>', 'name the peers from this cluster\'s pods, services and nodes (read once, before decoding)')
  .action(async (file: string, o: { format: 'table' | 'jsonl' | 'har'; bodyLimit: number; redact: boolean; redactHeader?: string[]; progress: boolean; wide?: boolean; stats?: string; proto?: string[]; maxMessages: number; redactParams?: boolean; filter?: string; identities?: string; kubeconfig?: string }) => {
    process.exitCode = await (await import('./analyze.js')).runAnalyze(file, { ...o, redactHeader: o.redactHeader ?? [], proto: o.proto ?? [], progress: o.progress ? undefined : false });
  });

program
  .command('verify')
  .description('Check flows with the built-in detectors and a spec: pass (0), fail (1), bad input (2) or inconclusive (3)')
  .argument('[file]', 'capture file, or - for standard input (or use --api)')
  .option('--spec <file>', 'YAML or JSON spec: checks, detector thresholds and severities, service names (schema/tapwire-spec.schema.json)')
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
  .option('--max-evidence <n>', 'evidence entries listed per finding (the total is always stated)', positiveInt('--max-evidence'))
  .option('--api <url>', 'read flows from a running tapwire agent instead of a capture')
  .option('--snapshot <id>', 'with --api: the flows of this snapshot')
  .option('--since <time>', 'with --api: flows from this time (RFC 3339 or epoch seconds)')
  .option('--until <time>', 'with --api: flows up to this time (RFC 3339 or epoch seconds)')
  .option('--token <token>', 'with --api: bearer token (default: TAPWIRE_TOKEN)')
  .option('--no-progress', 'no progress bar while a large capture is read, even on a terminal')
  .option('--identities <file>', 'JSON map of ip → { name, namespace, workload, node, service }: names the peers')
  .option('--kubeconfig <file>', 'name the peers from this cluster\'s pods, services and nodes (read once, before decoding)')
  .action(async (file: string | undefined, o: { format: 'text' | 'json'; spec?: string; maxEvidence?: number; api?: string; snapshot?: string; since?: string; until?: string; token?: string; progress: boolean; identities?: string; kubeconfig?: string }) => {
    const usage = verifyUsage(file, o);
    if (usage) {
      process.stderr.write(`tapwire: verify: ${usage}\n`);
      process.exitCode = 2;
      return;
    }
    const api = o.api === undefined ? undefined : { url: o.api, snapshot: o.snapshot, since: o.since, until: o.until, token: o.token ?? process.env.TAPWIRE_TOKEN };
    process.exitCode = await (await import('./verify.js')).runVerify(file, { format: o.format, spec: o.spec, maxEvidence: o.maxEvidence, api, progress: o.progress ? undefined : false, identities: o.identities, kubeconfig: o.kubeconfig });
  });

/** Which flows to verify must be said exactly once: a capture, or --api with a snapshot or a window. */
function verifyUsage(file: string | undefined, o: { api?: string; snapshot?: string; since?: string; until?: string }): string | undefined {
  const window = o.since !== undefined || o.until !== undefined;
  if (o.api === undefined) {
    if (o.snapshot !== undefined || window) return '--snapshot, --since and --until need --api <url>';
    if (file === undefined) return 'give a capture file (or - for standard input), or --api <url> with --snapshot or --since/--until';
    return undefined;
  }
  if (file !== undefined) return `give either a capture file ("${file}") or --api, not both`;
  if (o.snapshot !== undefined && window) return '--snapshot and --since/--until are alternatives: give one';
  if (o.snapshot === undefined && !window) return '--api needs --snapshot <id>, or --since/--until for a time window';
  for (const [name, v] of [['--since', o.since], ['--until', o.until]] as const) {
    if (v !== undefined && !/^\d+(?:\.\d+)?$/.test(v) && Number.isNaN(Date.parse(v))) return `${name} "${v}" is neither RFC 3339 nor epoch seconds`;
  }
  return undefined;
}

program
  .command('diff')
  .description('Compare two captures (or two snapshots with --api): endpoints, calls per request, statuses, latency, payload shapes and findings; exit 1 on a regression')
  .argument('<before>', 'the capture before the change, or - for standard input (with --api: a snapshot id)')
  .argument('<after>', 'the capture after the change, or - for standard input (with --api: a snapshot id)')
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
  .option('--api <url>', 'compare two snapshots held by a running tapwire agent')
  .option('--token <token>', 'with --api: bearer token (default: TAPWIRE_TOKEN)')
  .option('--no-progress', 'no progress bar while large captures are read, even on a terminal')
  .action(async (before: string, after: string, o: { format: 'text' | 'json'; api?: string; token?: string; progress: boolean }) => {
    const api = o.api === undefined ? undefined : { url: o.api, token: o.token ?? process.env.TAPWIRE_TOKEN };
    process.exitCode = await (await import('./diff.js')).runDiff(before, after, { format: o.format, api, progress: o.progress ? undefined : false });
  });

program
  .command('agent')
  .description('Capture live traffic (libpcap or eBPF), decode it into flows, keep them on disk and serve the flow API')
  .addOption(new Option('--interface <name>', 'interface to capture on (repeatable), or any; with --source ebpf, also a pattern such as \'veth*\', followed as links come and go').argParser(repeatable).default([], CLI_DEFAULTS.captureInterfaces.join(', ')))
  .option('--filter <bpf>', 'BPF capture filter, e.g. "tcp port 8080"')
  .option('--listen <host:port>', 'API address; anything but loopback needs --token', CLI_DEFAULTS.listen)
  .option('--data-dir <dir>', 'where flow and packet segments and snapshots are kept (default: $XDG_DATA_HOME/tapwire)')
  .option('--retention <size/age>', 'keep at most this much, this long: e.g. 2GiB/24h', CLI_DEFAULTS.retention)
  .option('--identities <file>', 'JSON map of ip → { name, namespace, workload, node }, reloaded on change')
  .option('--body-limit <bytes>', 'body bytes kept per message', positiveInt('--body-limit', ' of bytes'), CLI_DEFAULTS.bodyLimit)
  .option('--token <token>', 'bearer token the API requires (default: TAPWIRE_TOKEN)')
  .option('--spec <file>', 'standing spec judged continuously over live flows, served at /api/verdicts (repeatable)', repeatable)
  .option('--spec-window <duration>', 'with --spec: judge the flows of this last stretch of time, e.g. 5m, 90s, 1h', CLI_DEFAULTS.window)
  .option('--kubernetes', 'name pods, services and nodes from the Kubernetes API, and keep pod events (in-cluster config)')
  .option('--kubeconfig <file>', 'with --kubernetes, from outside the cluster: this kubeconfig (implies --kubernetes)')
  .option('--node <name>', 'with --kubernetes: this node\'s name, whose pods the agent watches (default: NODE_NAME)')
  .option('--cluster-events', 'with --kubernetes: also watch the cluster\'s Events (probe failures, rollouts); the hub does this for a cluster')
  .addOption(new Option('--tls <mode>', 'TLS plaintext through eBPF uprobes on OpenSSL, host-wide: auto (when the addon and privileges are there), uprobe (insist), off').choices(['auto', 'uprobe', 'off']).default('auto'))
  .addOption(new Option('--source <source>', 'packet source: pcap (libpcap), ebpf (TC classifiers with kernel timestamps and drop counters; needs the eBPF addon and privileges), both (side by side, compared in /metrics), auto (ebpf when it can run, else pcap)').choices(['pcap', 'ebpf', 'both', 'auto']).default(CLI_DEFAULTS.source))
  .option('--ring-size <size>', 'with --source ebpf, both or auto: the kernel ring buffer, a power of two, e.g. 8MiB', CLI_DEFAULTS.ringSize)
  .option('--no-processes', 'do not name the processes at flows\' ends (src.process, dst.process: connect/accept tracepoints, on by default when the eBPF addon and privileges are there)')
  .action(async (o: AgentCliOptions) => {
    process.exitCode = await (await import('./agent.js')).runAgent({ ...o, interface: o.interface ?? [], spec: o.spec ?? [] });
  });

program
  .command('hub')
  .description('Serve one flow API over many agents: flows merged under one cursor with duplicates removed, snapshots and pcaps across agents, metrics of all')
  .option('--agents <url,...>', 'agent API URLs, comma-separated')
  .option('--discover <namespace/service>', 'find the agents from the EndpointSlices of their headless Service (and follow them)')
  .option('--kubeconfig <file>', 'out-of-cluster access for --discover and the cluster\'s Events (default: the pod\'s service account)')
  .option('--no-cluster-events', 'do not watch the cluster\'s Events (watched by default with --discover or --kubeconfig)')
  .option('--listen <host:port>', 'hub API address; anything but loopback needs --token', '127.0.0.1:8900')
  .option('--token <token>', 'bearer token the hub API requires (default: TAPWIRE_TOKEN)')
  .option('--agent-token <token>', 'bearer token sent to the agents (default: TAPWIRE_AGENT_TOKEN, else the --token)')
  .option('--timeout <seconds>', 'an agent that takes longer is left out of an answer, which is flagged partial', (v: string) => {
    if (!/^\d+(?:\.\d+)?$/.test(v) || Number(v) <= 0) throw new InvalidArgumentError(`--timeout must be a positive number of seconds, got "${v}"`);
    return Number(v);
  }, 5)
  .action(async (o: { agents?: string; discover?: string; kubeconfig?: string; listen: string; token?: string; agentToken?: string; timeout: number; clusterEvents: boolean }) => {
    const token = o.token ?? (process.env.TAPWIRE_TOKEN || undefined);
    const agentToken = o.agentToken ?? (process.env.TAPWIRE_AGENT_TOKEN || token);
    process.exitCode = await (await import('./hub.js')).runHub({ ...o, token, agentToken });
  });

program
  .command('watch')
  .description('Judge standing specs continuously over a sliding window of live flows (a local capture, or a running agent with --api); print each verdict change')
  .option('--spec <file>', 'YAML or JSON spec (repeatable)', repeatable)
  .option('--api <url>', 'follow a running tapwire agent instead of capturing here')
  .option('--token <token>', 'with --api: bearer token (default: TAPWIRE_TOKEN)')
  .addOption(new Option('--interface <name>', 'without --api: interface to capture on (repeatable), or any; needs root or CAP_NET_RAW').argParser(repeatable).default([], CLI_DEFAULTS.captureInterfaces.join(', ')))
  .option('--filter <bpf>', 'without --api: BPF capture filter, e.g. "tcp port 8080"')
  .option('--window <duration>', 'judge the flows that started in this last stretch of time, e.g. 5m, 90s, 1h', CLI_DEFAULTS.window)
  .addOption(new Option('--format <format>', 'output format: one line, or one JSON object, per change').choices(['text', 'json']).default('text'))
  .action(async (o: WatchCliOptions) => {
    process.exitCode = await (await import('./watch.js')).runWatch({ ...o, spec: o.spec ?? [], interface: o.interface ?? [], token: o.token ?? (o.api !== undefined ? process.env.TAPWIRE_TOKEN || undefined : undefined) });
  });

program
  .command('run')
  .description('Run a test command with capture around it, then verify its traffic: the test result and the verdict')
  .usage('[options] -- <command...>')
  .argument('<command...>', 'the command and its arguments, after --')
  .option('--spec <file>', 'YAML or JSON spec to verify with (default: the built-in detectors)')
  .option('--interface <name>', `interface to capture on locally (default: ${CLI_DEFAULTS.localInterface}); needs root or CAP_NET_RAW`)
  .option('--filter <bpf>', 'BPF capture filter for the local capture, e.g. "tcp port 8080 or tcp port 5432"')
  .option('--api <url>', 'capture through a running tapwire agent (its snapshot, its run log) instead of locally')
  .option('--token <token>', 'with --api: bearer token (default: TAPWIRE_TOKEN)')
  .option('--data-dir <dir>', 'where local snapshots and the run log are kept (default: $TAPWIRE_DATA_DIR, else $XDG_DATA_HOME/tapwire)')
  .option('--timeout <seconds>', 'stop the command (its whole process group) after this long', (v: string) => {
    if (!/^\d+(?:\.\d+)?$/.test(v) || Number(v) <= 0) throw new InvalidArgumentError(`--timeout must be a positive number of seconds, got "${v}"`);
    return Number(v);
  })
  .addOption(new Option('--format <format>', 'output format (json: the run result on stdout, the command\'s output on stderr)').choices(['text', 'json']).default('text'))
  .option('--max-evidence <n>', 'evidence entries listed per finding (the total is always stated)', positiveInt('--max-evidence'))
  .option('--quiet', 'do not stream the command\'s output through')
  .addHelpText('after', `
Exit status: 0 the command and the verdict both pass; 1 the verdict fails (the command passed);
2 bad input (flags, spec, a command that cannot be found, a capture that cannot open);
3 the verdict is inconclusive (the command passed); 4 the command failed (exit status, signal
or --timeout) and the verdict did not fail, inconclusive included: the command's failure is the
stronger fact; 5 both failed; 130 cancelled (Ctrl-C or SIGTERM: the run is still kept).`)
  .action(async (command: string[], o: RunCliOptions) => {
    process.exitCode = await (await import('./run.js')).runRun(command, { ...o, token: o.token ?? (process.env.TAPWIRE_TOKEN || undefined) });
  });

program
  .command('mcp')
  .description('MCP server for AI agents: flows, snapshots, verify, diff and run_and_verify as tools (stdio, or Streamable HTTP with --http)')
  .option('--api <url>', 'live flows, snapshots and runs from a running tapwire agent (default: capture locally)')
  .option('--token <token>', 'bearer token for the agent and for --http (default: TAPWIRE_TOKEN); --http off loopback requires one')
  .option('--http <host:port>', 'serve Streamable HTTP at http://host:port/mcp instead of stdio')
  .option('--data-dir <dir>', 'where local snapshots, the run log and exported pcaps are kept (default: $TAPWIRE_DATA_DIR, else $XDG_DATA_HOME/tapwire)')
  .option('--interface <name>', 'interface a local capture uses; needs root or CAP_NET_RAW', CLI_DEFAULTS.localInterface)
  .option('--max-tokens <n>', 'bound on one result, in estimated tokens', positiveInt('--max-tokens'), CLI_DEFAULTS.maxTokens)
  .action(async (o: McpCliOptions) => {
    process.exitCode = await (await import('./mcp.js')).runMcp({ ...o, token: o.token ?? (process.env.TAPWIRE_TOKEN || undefined) });
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as { code?: string; exitCode?: number };
  if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exitCode = 0;
  else if (e.code?.startsWith('commander.')) process.exitCode = 2;
  else {
    process.stderr.write(`tapwire: internal error: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 70;
  }
}
