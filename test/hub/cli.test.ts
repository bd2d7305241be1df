import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/** `tapwire hub`'s flags: bad input exits 2 with a message naming the flag, before anything starts. */
const hub = (...args: string[]) => spawnSync(process.execPath, ['dist/cli/main.js', 'hub', ...args], { encoding: 'utf8', timeout: 20_000 });

describe('tapwire hub flags', () => {
  for (const [args, message] of [
    [[], /give the agents with --agents url,… or find them with --discover namespace\/service/],
    [['--agents', 'ftp://10.0.0.1'], /--agents: "ftp:\/\/10\.0\.0\.1" is not an http\(s\) URL/],
    [['--agents', 'not a url'], /--agents: "not a url" is not a URL/],
    [['--agents', ','], /--agents ",": expected one or more agent URLs/],
    [['--discover', 'tapwire'], /--discover "tapwire": expected namespace\/service/],
    [['--discover', 'Tapwire/agents'], /--discover "Tapwire\/agents": expected namespace\/service/],
    // --kubeconfig without --discover: the cluster's Events, watched by the hub.
    [['--agents', 'http://10.0.0.1:8899', '--kubeconfig', 'k.yaml'], /--kubeconfig k\.yaml: cannot read the kubeconfig: no such file/],
    [['--agents', 'http://10.0.0.1:8899', '--listen', 'nowhere'], /--listen "nowhere": expected host:port/],
    [['--agents', 'http://10.0.0.1:8899', '--listen', '0.0.0.0:0'], /--listen 0\.0\.0\.0:0 is not loopback: give a token/],
    [['--agents', 'http://10.0.0.1:8899', '--timeout', '0'], /--timeout must be a positive number of seconds, got "0"/],
    [['--discover', 'tapwire/agents', '--kubeconfig', '/nonexistent/kubeconfig'], /\/nonexistent\/kubeconfig: cannot read the kubeconfig: no such file/],
  ] as const) {
    it(`${args.join(' ') || '(no flags)'}: exit 2`, () => {
      const r = hub(...args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  }
});
