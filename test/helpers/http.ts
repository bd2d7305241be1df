/**
 * Turns an HTTP case (steps in wire order) into TCP segments, optionally cutting one direction's
 * byte stream at a given offset, and runs it through the pipeline.
 */
import { Conversation, type ConversationOptions, type Segment } from './bytes.js';
import { runSegments, shape, summary, type Run } from './pipeline.js';

export type Step = readonly ['c' | 's', string | Buffer];

export interface Scenario {
  steps: Step[];
  conv?: ConversationOptions;
  handshake?: boolean;
  end?: 'fin' | 'server-fin' | 'none' | 'rst';
}

export const bytesOf = (b: string | Buffer) => (typeof b === 'string' ? Buffer.from(b, 'latin1') : b);

/** Total bytes each direction sends. */
export function streamLengths(s: Scenario): [number, number] {
  const n: [number, number] = [0, 0];
  for (const [who, b] of s.steps) n[who === 'c' ? 0 : 1] += bytesOf(b).length;
  return n;
}

/**
 * Segments for a scenario. `split` cuts direction `dir`'s stream at byte `at` (one extra segment
 * boundary there); every step is otherwise one segment (up to 1460 bytes each).
 */
export function scenarioSegments(s: Scenario, split?: { dir: 0 | 1; at: number }): Segment[] {
  const c = new Conversation(s.conv);
  if (s.handshake ?? true) c.handshake();
  const sent: [number, number] = [0, 0];
  for (const [who, b] of s.steps) {
    const dir = who === 'c' ? 0 : 1;
    const bytes = bytesOf(b);
    const cuts: number[] = [];
    for (let k = 1460; k < bytes.length; k += 1460) cuts.push(k);
    if (split && split.dir === dir && split.at > sent[dir] && split.at < sent[dir] + bytes.length) cuts.push(split.at - sent[dir]);
    c.send(dir, bytes, [...new Set(cuts)].sort((x, y) => x - y));
    sent[dir] += bytes.length;
  }
  const end = s.end ?? 'fin';
  if (end === 'fin') c.close(0);
  else if (end === 'server-fin') c.close(1);
  else if (end === 'rst') c.rst(0);
  return c.segments;
}

export function runScenario(s: Scenario, split?: { dir: 0 | 1; at: number }): Run {
  return runSegments(scenarioSegments(s, split));
}

export { shape, summary };
