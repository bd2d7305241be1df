// One fresh process: decode a capture, then time `verify` (every built-in detector, causal
// grouping) over its records. Prints JSON: flows, seconds of verification, findings.
import { analyzeFile } from '../dist/pipeline/analyze.js';
import { verify } from '../dist/verify/verdict.js';

const { records } = await analyzeFile(process.argv[2]);
const t0 = process.hrtime.bigint();
const v = verify(records);
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ flows: records.length, seconds, findings: v.findings.length, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
