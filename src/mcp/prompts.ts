import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { GetPromptResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** Flows that failed, in the filter language: 5xx, gRPC non-OK, SQL errors, stream resets. */
export const FAILED_FILTER = '(has(response.status) && response.status >= 500) || (grpc && response.grpcStatus != 0) || (postgres && has(response.error)) || error != null';

/**
 * Prompts that walk an agent through tapwire's loops, naming the tools in the order to call
 * them. They only compose text: the tools do the work.
 */
export function registerPrompts(server: McpServer): void {
  server.registerPrompt('verify-my-change', {
    title: 'Verify my change',
    description: 'Run the tests under capture, verify what went over the network, explain the evidence and suggest the fix',
    argsSchema: {
      command: z.string().describe('the test command, e.g. "npm test"'),
      spec: z.string().optional().describe('a spec file or inline YAML; default: the built-in detectors'),
      service: z.string().optional().describe('the service you changed, to find which test commands exercise it'),
    },
  }, (a) => user([
    'Check what my change actually did on the network, with the tapwire tools, in this order:',
    ...(a.service ? [`0. Call runs_touching with service "${a.service}" to see which test commands exercised it before; prefer those.`] : []),
    `1. Call run_and_verify with command ${JSON.stringify(a.command)}${a.spec ? ` and spec ${JSON.stringify(a.spec)}` : ''}. `
      + 'It snapshots the traffic, runs the command, drains the capture and verifies: you get the exit code, the output tail, the snapshot id, the verdict and the findings. '
      + '(By hand: start_snapshot, run the tests, stop_snapshot, then verify with that snapshot.)',
    '2. For each error finding, call get_flow on its evidence flow ids (include_bodies when the payload matters) and read what was sent and answered.',
    `3. Call run_history${a.spec ? ` with spec ${JSON.stringify(a.spec)}` : ` with command ${JSON.stringify(a.command)}`} to see whether these findings failed before, how often, and whether the check is flaky.`,
    '4. Explain each finding from its evidence (flow ids, times, statuses), name the code that most likely causes it, and suggest the fix.',
    '5. After the fix, run run_and_verify again; diff the two snapshots (diff before=<old snapshot> after=<new snapshot>) to confirm the regression is gone and nothing new appeared.',
    'If the verdict is inconclusive, say what evidence was missing (coverage and reason) instead of guessing.',
  ]));

  server.registerPrompt('investigate-errors', {
    title: 'Investigate errors',
    description: 'Find failing calls in live traffic, follow them to their cause, and explain them',
    argsSchema: {
      since: z.string().optional().describe('from this time (RFC 3339 or epoch seconds); default: what the backend holds'),
      service: z.string().optional().describe('only calls to or from this service'),
    },
  }, (a) => {
    const filter = a.service ? `(${FAILED_FILTER}) && (dst.name == ${JSON.stringify(a.service)} || src.name == ${JSON.stringify(a.service)})` : FAILED_FILTER;
    const when = a.since ? ` with since ${JSON.stringify(a.since)}` : '';
    return user([
      'Investigate the errors in the captured traffic with the tapwire tools, in this order:',
      `1. Call service_map${when} to see who calls whom and where the errors are.`,
      `2. Call list_flows${when} with filter ${JSON.stringify(filter)} to list the failing calls.`,
      '3. Call get_flow on a few of them (include_bodies: true) to read the error responses.',
      `4. Call verify${when || ' with a since/until window'} to let the detectors group them: retries without backoff, redundant calls, secrets forwarded, N+1 queries.`,
      '5. Read verdicts://current if the agent has standing specs: it says which checks are failing now.',
      '6. Explain the cause from the evidence (flow ids and times), and suggest the fix.',
    ]);
  });
}

function user(lines: string[]): GetPromptResult {
  return { messages: [{ role: 'user', content: { type: 'text', text: lines.join('\n') } }] };
}
