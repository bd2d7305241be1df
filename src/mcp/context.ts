import { AgentClient } from '../client/index.js';
import { Redactor } from '../flows/index.js';
import { loadRedactKey } from '../pipeline/index.js';
import { AgentBackend, defaultDataDir, LocalBackend, type Backend } from '../run/index.js';
import { DEFAULT_MAX_TOKENS } from './bound.js';
import { CaptureCache } from './captures.js';
import { InFlight, SETTLE_MS } from './inflight.js';
import { VerdictFollower } from './verdicts.js';

/**
 * What every tool of one `tapwire mcp` process shares: where files resolve, the result bound,
 * decoded captures, and the backend that holds live flows, snapshots and runs. One context serves
 * every session (each HTTP session has its own McpServer over it).
 */
export interface McpContext {
  /** Relative capture paths and specs resolve against this. */
  cwd: string;
  /** The bound on one result, in estimated tokens. */
  maxTokens: number;
  captures: CaptureCache;
  /** The agent (`--api`) or a local capture: made on first use, then kept. */
  backend(): Promise<Backend>;
  /** Set with `--api`: the agent itself, for its standing-spec verdicts. */
  agent?: AgentClient;
  /** Set with `--api`: the agent's verdict stream, followed once for every session. */
  verdicts?: VerdictFollower;
  /** Where exported pcaps are written. */
  dataDir: string;
  /** Interface a local run captures on unless the call names one. */
  iface: string;
  /** The tool calls running now: a shutdown cancels them and waits for them. */
  calls: InFlight;
  /** Diagnostics, to stderr (stdout carries only the protocol on stdio). */
  log(line: string): void;
  /**
   * Why run_and_verify is refused, when it is: a command runner must not be reachable without
   * authentication by every local user (Streamable HTTP on loopback without a token).
   */
  commandsRefused?: string;
}

/** Made on first call, then the same promise; a failure is not kept, so the next call retries. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => {
    if (!p) {
      p = make();
      p.catch(() => { p = undefined; });
    }
    return p;
  };
}

export interface ContextOptions {
  cwd?: string;
  maxTokens?: number;
  /** The agent's URL (`--api`): its backend, and its verdicts. */
  api?: string;
  /** Bearer token for the agent. */
  token?: string;
  dataDir?: string;
  iface?: string;
  /** Key for redacting capture files' secrets (default: loadRedactKey()). */
  redactKey?: Buffer;
  log?: (line: string) => void;
  commandsRefused?: string;
}

/**
 * The context of one server process. `close` first cancels the tool calls in flight and waits for
 * them (bounded), so that a run records itself before the backend under it is closed; then it
 * stops a local capture still running and the verdict stream.
 */
export function makeContext(o: ContextOptions = {}): McpContext & { close(): Promise<void> } {
  const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const agent = o.api !== undefined ? new AgentClient(o.api, o.token) : undefined;
  const dataDir = o.dataDir ?? defaultDataDir();
  const iface = o.iface ?? 'lo';
  let made: Backend | undefined;
  const backend = once(async () => (made = agent ? new AgentBackend(agent, log) : new LocalBackend({ dataDir, iface, onWarning: log })));
  const verdicts = agent ? new VerdictFollower(agent, log) : undefined;
  const calls = new InFlight();
  return {
    cwd: o.cwd ?? process.cwd(), maxTokens: o.maxTokens ?? DEFAULT_MAX_TOKENS,
    captures: new CaptureCache(new Redactor({ key: o.redactKey ?? loadRedactKey().key })),
    backend, agent, verdicts, dataDir, iface, log, commandsRefused: o.commandsRefused, calls,
    async close() {
      await calls.settle(SETTLE_MS, log);
      verdicts?.close();
      await made?.close();
    },
  };
}
