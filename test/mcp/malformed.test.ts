import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, DEMO, expectArgError, text, type ToolName } from './helpers.js';

/**
 * Bad arguments, on every tool: the result is `isError` and its text names the argument and says
 * why. Schema failures are answered by the SDK ("… at limit"), the rest by the tools
 * ("filter: … at position 8"). None of these needs a capture to start: the backend is local,
 * over an empty data directory.
 */
const cases: [tool: ToolName, args: Record<string, unknown>, argument: string, why: RegExp][] = [
  ['list_flows', { capture: DEMO, limit: 'ten' }, 'limit', /expected number/],
  ['list_flows', { capture: DEMO, limit: 5000 }, 'limit', /<=1000/],
  ['list_flows', { capture: DEMO, filter: 'http &&' }, 'filter', /position 7/],
  ['list_flows', { capture: DEMO, filter: 'response.stauts > 1' }, 'filter', /did you mean 'status'/],
  ['list_flows', { capture: DEMO, since: 'yesterday' }, 'since', /neither RFC 3339/],
  ['list_flows', { capture: DEMO, since: '2026-11-21T12:00:00Z', until: '2026-11-21T11:00:00Z' }, 'until', /before since/],
  ['list_flows', { capture: DEMO, cursor: 'abc' }, 'cursor', /not a cursor this server gave/],
  ['list_flows', { capture: DEMO, colour: 'red' }, 'colour', /Unrecognized key/],
  ['list_flows', {}, 'snapshot', /flows are kept per snapshot/],
  ['get_flow', {}, 'id', /expected string/],
  ['get_flow', { capture: DEMO, id: 'no-such-flow' }, 'id', /no flow "no-such-flow" in pcaps\/demo\/demo\.pcap/],
  ['get_flow', { capture: DEMO, id: 'x', max_body_bytes: 0 }, 'max_body_bytes', />=1/],
  ['get_flow', { id: 'no-such-flow' }, 'id', /no flow "no-such-flow" on the local backend/],
  ['service_map', { capture: 'pcaps/demo/missing.pcap' }, 'capture', /no such file/],
  ['service_map', { capture: 'README.md' }, 'capture', /not a pcap or pcapng|not a capture|magic/i],
  ['service_map', { capture: 'pcaps/demo' }, 'capture', /is a directory/],
  ['service_map', {}, 'snapshot', /flows are kept per snapshot/],
  ['start_snapshot', { filter: 'http &&&' }, 'filter', /position/],
  ['start_snapshot', { name: 5 }, 'name', /expected string/],
  ['stop_snapshot', {}, 'id', /expected string/],
  ['stop_snapshot', { id: 'snap-000000000000' }, 'id', /no snapshot "snap-000000000000"/],
  ['list_snapshots', { all: true }, 'all', /Unrecognized key/],
  ['export_pcap', { snapshot: 'snap-000000000000' }, 'snapshot', /no snapshot/],
  ['export_pcap', {}, 'snapshot', /expected string/],
  ['verify', {}, 'capture', /give a capture file, a snapshot id, or since\/until/],
  ['verify', { capture: DEMO, snapshot: 'snap-000000000000' }, 'snapshot', /give capture or snapshot, not both/],
  ['verify', { capture: DEMO, spec: 'version: 2' }, 'spec', /version/],
  ['verify', { capture: DEMO, spec: 'version: 1\nchecks:\n  - name: x\n    select: 3\n' }, 'spec', /checks\[0\]\.select: .*\(line 4\)/],
  ['verify', { capture: DEMO, spec: 'specs/missing.yaml' }, 'spec', /no such file/],
  ['verify', { capture: DEMO, spec: 'version: 1\n  bad: [' }, 'spec', /not valid YAML/],
  ['verify', { since: 'noon' }, 'since', /neither RFC 3339/],
  ['verify', { since: '2026-11-21T12:00:00Z' }, 'snapshot', /flows are kept per snapshot/],
  ['diff', { before: 'missing.pcap', after: DEMO }, 'before', /neither a capture file .* nor a snapshot/],
  ['diff', { before: DEMO }, 'after', /expected string/],
  ['diff', { before: DEMO, after: 'README.md' }, 'after', /README\.md/],
  ['run_and_verify', {}, 'command', /expected string/],
  ['run_and_verify', { command: '' }, 'command', />=1/],
  ['run_and_verify', { command: 'true', timeout_s: 0 }, 'timeout_s', />0/],
  ['run_and_verify', { command: 'true', cwd: '/no/such/dir' }, 'cwd', /no such directory/],
  ['run_and_verify', { command: 'true', spec: 'version: 2' }, 'spec', /version/],
  ['analyze_capture', {}, 'capture', /expected string/],
  ['analyze_capture', { capture: DEMO, limit: 0 }, 'limit', />=1/],
  ['analyze_capture', { capture: DEMO, filter: 'grpc &&' }, 'filter', /position/],
  ['run_history', { limit: 0 }, 'limit', />=1/],
  ['run_history', { spec: 7 }, 'spec', /expected string/],
  ['runs_touching', {}, 'service', /give service, path, or both/],
  ['runs_touching', { service: ['a'] }, 'service', /expected string/],
  ['cluster_events', { since: 'noon' }, 'since', /neither RFC 3339/],
  ['cluster_events', { pod: 7 }, 'pod', /expected string/],
  ['list_workloads', { since: 'noon' }, 'since', /neither RFC 3339/],
  ['list_workloads', { workload: 7 }, 'workload', /expected string/],
  ['list_workloads', {}, 'snapshot', /flows are kept per snapshot/],
];

describe('tapwire mcp: malformed arguments on every tool', () => {
  let t: Awaited<ReturnType<typeof connect>>;
  beforeAll(async () => { t = await connect(); });
  afterAll(async () => { await t.close(); });

  it('covers every tool', () => {
    expect(new Set(cases.map((c) => c[0]))).toEqual(new Set(t.tools.map((x) => x.name)));
  });

  it.each(cases)('%s %j names %s', async (tool, args, argument, why) => {
    const r = await t.call(tool, args);
    expectArgError(r, argument);
    expect(text(r)).toMatch(why);
    expect(r.structuredContent).toBeUndefined();
  });
});
