// `npm start`: the demo in three steps: decode the bundled capture, verify it, say what to try next.
// The demo's verdict is meant to fail (it holds three bugs), so a FAIL (exit 1) is a good run; a
// decode or verify that could not run (exit 2 or more) is passed on.
import { spawnSync } from 'node:child_process';

const cli = (args) => spawnSync(process.execPath, ['dist/cli/main.js', ...args], { stdio: 'inherit' }).status ?? 1;
const demo = 'pcaps/demo/demo.pcap';

let status = cli(['analyze', demo]);
if (status !== 0) process.exit(status);
process.stdout.write('\n');
status = cli(['verify', demo]);
if (status > 1) process.exit(status);

process.stdout.write(`
Next: check the demo against its spec, compare it with the fixed build, see all:
  npx tapwire verify ${demo} --spec examples/specs/demo.yaml
  npx tapwire diff ${demo} pcaps/demo/demo-fixed.pcap
  npx tapwire --help
`);
