// Micro-benchmark of the filter language: predicate evaluations per second over the 29 records of
// the demo capture, for the examples of README "Filter language". Run after a build:
//
//   npm run build && node bench/filter.mjs [seconds per expression, default 1]
import { analyzeFile } from '../dist/pipeline/analyze.js';
import { compileFilter } from '../dist/query/filter.js';

const seconds = Number(process.argv[2]) || 1;
const { records } = await analyzeFile('pcaps/demo/demo.pcap');

const EXPRESSIONS = [
  'http && response.status >= 500 && dst.name == "payment"',
  'grpc && response.grpcStatus != 0',
  'postgres && request.query.contains("orders")',
  'duration_ms > 200',
  'http && request.path.startsWith("/orders/") && has(response.status)',
  'request.headers.exists(h, h == "authorization")',
  'start > timestamp("2026-11-21T12:15:35Z") && end - start > duration("20ms")',
  'request.path.matches("^/orders/[0-9]+$")',
];

function measure(keep) {
  let evaluations = 0;
  let matched = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(Math.round(seconds * 1e9));
  let now = t0;
  while (now < until) {
    for (let i = 0; i < 100; i++) for (const r of records) if (keep(r)) matched++;
    evaluations += 100 * records.length;
    now = process.hrtime.bigint();
  }
  return { perSecond: evaluations / (Number(now - t0) / 1e9), matched: matched / (evaluations / records.length) };
}

const compileRuns = 200;
console.log(`${records.length} records (pcaps/demo/demo.pcap), node ${process.version}, ${seconds} s per expression\n`);
console.log('evaluations/s  matches  compile ms  expression');
for (const expr of EXPRESSIONS) {
  const c0 = performance.now();
  for (let i = 0; i < compileRuns; i++) compileFilter(expr);
  const compileMs = (performance.now() - c0) / compileRuns;
  const { perSecond, matched } = measure(compileFilter(expr));
  console.log(`${Math.round(perSecond).toLocaleString('en-US').padStart(13)}  ${String(matched).padStart(7)}  ${compileMs.toFixed(3).padStart(10)}  ${expr}`);
}
