import { DEFAULT_BODY_LIMIT } from '../common/index.js';

/**
 * The defaults `--help` shows, in one place, used both by the option definitions (main.ts) and by
 * the commands where the default is applied at run time (an empty --interface list means "any"),
 * so help and behaviour cannot drift apart. test/cli/help.test.ts checks every "(default: …)".
 */
export const CLI_DEFAULTS = {
  bodyLimit: DEFAULT_BODY_LIMIT,
  maxMessages: 100,
  /** agent and watch capture on every interface unless told. */
  captureInterfaces: ['any'] as readonly string[],
  /** run and mcp capture on loopback unless told: the test under them talks to local services. */
  localInterface: 'lo',
  listen: '127.0.0.1:8899',
  /** agent's packet source: libpcap unless told (eBPF needs the optional addon and privileges). */
  source: 'pcap',
  /** The eBPF source's ring: 8 MiB lost nothing at this machine's maximum rate (docs/tc-capture.md). */
  ringSize: '8MiB',
  retention: '1GiB/24h',
  window: '5m',
  maxTokens: 20000,
} as const;
