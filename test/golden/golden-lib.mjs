// Shared by scripts/golden.mjs (which writes baselines) and golden.test.ts (which checks them),
// so both run the pipeline the same way. Runs the built code in dist/.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { decodeCapture } from '../../dist/pipeline/decode-capture.js';
import { Redactor } from '../../dist/flows/redact.js';
import { loadProtos } from '../../dist/pipeline/protos.js';

export const GOLDEN_DIR = 'test/golden';
/** A fixed key, so redacted tokens in the baselines are stable. Not a secret. */
export const GOLDEN_KEY = Buffer.from('tapwire-golden-baselines');

export function goldenFiles(dir = 'pcaps') {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...goldenFiles(p));
    else if (/\.pcap(ng)?$/.test(e.name)) out.push(p);
  }
  return out.sort();
}

export async function goldenRun(file) {
  const records = [];
  // A .proto beside a capture is its schema (as --proto would give it).
  const protoFiles = readdirSync(dirname(file)).filter((f) => f.endsWith('.proto'));
  const protos = protoFiles.length ? loadProtos(protoFiles.map((f) => join(dirname(file), f))) : undefined;
  // Records in the order the pipeline completes them (onRecord), as the baselines have them.
  const { summary: s } = await decodeCapture(file, { redactor: new Redactor({ key: GOLDEN_KEY }), protos, onRecord: (r) => records.push(r) });
  const jsonl = records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
  const stats = {
    packets: s.packets,
    flows: s.flows,
    violations: { total: s.violations.total, ...s.violations.counts },
    connections: s.reassembly.connections,
    gaps: s.reassembly.gaps,
    byProtocol: s.protocols,
    unknownConnections: s.unknownConnections,
    // What was seen but not decoded: TCP connections by why (tls, mysql … unknown), connections
    // without payload, UDP flows, and their servers (issue 12).
    undecoded: s.coverage,
  };
  return { jsonl, stats, records };
}
