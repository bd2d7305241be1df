import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI_DEFAULTS } from '../../src/cli/defaults.js';
import { DEFAULT_BODY_LIMIT } from '../../src/common/defaults.js';

/** Each option's "(default: …)" as `tapwire <command> --help` prints it, wrapped lines joined. */
function helpDefaults(command: string): Map<string, string[]> {
  const r = spawnSync(process.execPath, ['dist/cli/main.js', command, '--help'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const out = new Map<string, string[]>();
  // An option's entry starts at a line beginning with "  -"; its description may wrap.
  const entries = r.stdout.split(/\n(?=\s{2}-)/).map((e) => e.replace(/\s+/g, ' ').trim()).filter((e) => e.startsWith('-'));
  for (const e of entries) {
    const name = /--[a-z-]+/.exec(e)![0];
    const defaults = [...e.matchAll(/default: ([^)]*)\)/g)].map((m) => m[1]!.replace(/^"(.*)"$/, '$1'));
    if (defaults.length) out.set(name, defaults);
  }
  return out;
}

/** What each command really does when the option is left out (the code's constants). */
const EXPECTED: Record<string, Record<string, string>> = {
  analyze: { '--format': 'table', '--body-limit': String(DEFAULT_BODY_LIMIT), '--max-messages': String(CLI_DEFAULTS.maxMessages) },
  verify: { '--format': 'text', '--token': 'TAPWIRE_TOKEN' },
  diff: { '--format': 'text', '--token': 'TAPWIRE_TOKEN' },
  agent: {
    '--interface': 'any', '--listen': CLI_DEFAULTS.listen, '--data-dir': '$XDG_DATA_HOME/tapwire', '--retention': CLI_DEFAULTS.retention,
    '--body-limit': String(DEFAULT_BODY_LIMIT), '--token': 'TAPWIRE_TOKEN', '--spec-window': CLI_DEFAULTS.window, '--node': 'NODE_NAME', '--tls': 'auto', '--source': CLI_DEFAULTS.source, '--ring-size': CLI_DEFAULTS.ringSize,
  },
  watch: { '--token': 'TAPWIRE_TOKEN', '--interface': 'any', '--window': CLI_DEFAULTS.window, '--format': 'text' },
  run: { '--spec': 'the built-in detectors', '--interface': 'lo', '--token': 'TAPWIRE_TOKEN', '--data-dir': '$TAPWIRE_DATA_DIR, else $XDG_DATA_HOME/tapwire', '--format': 'text' },
  mcp: { '--api': 'capture locally', '--token': 'TAPWIRE_TOKEN', '--data-dir': '$TAPWIRE_DATA_DIR, else $XDG_DATA_HOME/tapwire', '--interface': 'lo', '--max-tokens': String(CLI_DEFAULTS.maxTokens) },
};

describe('--help defaults agree with the code', () => {
  it('the runtime defaults are the ones help names', () => {
    expect(CLI_DEFAULTS.captureInterfaces).toEqual(['any']);
    expect(CLI_DEFAULTS.localInterface).toBe('lo');
    expect(CLI_DEFAULTS.bodyLimit).toBe(DEFAULT_BODY_LIMIT);
  });

  for (const [command, want] of Object.entries(EXPECTED)) {
    it(`tapwire ${command} --help: each default once, and the one the code uses`, () => {
      const got = helpDefaults(command);
      for (const [opt, values] of got) expect(values, `${command} ${opt} states its default ${values.length} times`).toHaveLength(1);
      expect(Object.fromEntries([...got].map(([k, v]) => [k, v[0]]))).toEqual(want);
    });
  }
});
