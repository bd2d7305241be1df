// Regenerates the golden baselines: for every capture in pcaps/, the JSONL records and a stats
// file under test/golden/. Review the diff before committing: a changed baseline is a changed
// decoder.  Usage: npm run golden [-- pcaps/http1/keepalive.pcap ...]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { goldenFiles, goldenRun, GOLDEN_DIR } from '../test/golden/golden-lib.mjs';

const files = process.argv.length > 2 ? process.argv.slice(2) : goldenFiles();
for (const file of files) {
  const { jsonl, stats } = await goldenRun(file);
  const base = join(GOLDEN_DIR, relative('pcaps', file));
  mkdirSync(dirname(base), { recursive: true });
  writeFileSync(`${base}.jsonl`, jsonl);
  writeFileSync(`${base}.stats.json`, `${JSON.stringify(stats, null, 2)}\n`);
  const u = stats.undecoded;
  const unseen = u.connections + u.udpFlows > 0 ? `, ${u.connections} connections and ${u.udpFlows} UDP flows not decoded` : '';
  console.log(`${base}.jsonl: ${stats.flows} flows${unseen}, ${stats.violations.total} violations`);
}
