// One fresh process: the decode pipeline on a capture, records built and dropped. Prints JSON.
import { analyzeFile } from '../dist/pipeline/analyze.js';
import { Redactor } from '../dist/flows/index.js';
import { loadRedactKey } from '../dist/pipeline/index.js';

const file = process.argv[2];
let flows = 0;
const { pipeline, elapsedSec, file: info } = await analyzeFile(file, {
  redactor: new Redactor({ key: loadRedactKey().key }),
  onRecord: () => { flows++; },
});
console.log(JSON.stringify({ seconds: elapsedSec, bytes: info.bytesRead, packets: pipeline.packets, flows, maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
