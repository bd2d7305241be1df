// Shared by scripts/golden.mjs (which writes baselines) and golden.test.ts (which checks them),
// so both run the pipeline the same way. Runs the built code in dist/.
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { analyzeFile } from '../../dist/pipeline/analyze.js';
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
  const { pipeline: p } = await analyzeFile(file, { redactor: new Redactor({ key: GOLDEN_KEY }), protos, onRecord: (r) => records.push(r) });
  const jsonl = records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : '');
  const stats = {
    packets: p.packets,
    flows: p.flows,
    violations: { total: p.violations.total, ...p.violations.toJSON() },
    connections: p.reassembler.stats.connections,
    gaps: p.reassembler.stats.gaps,
    byProtocol: p.dispatcher.stats.byProtocol,
    unknownConnections: p.dispatcher.stats.unknown,
    // What was seen but not decoded: TCP connections by why (tls, mysql … unknown), connections
    // without payload, UDP flows, and their servers (issue 12).
    undecoded: p.coverage(),
  };
  return { jsonl, stats, records };
}
