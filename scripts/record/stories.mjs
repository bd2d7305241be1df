// Records the verifier fixtures in pcaps/verify/: one capture per detector, each a small story of
// real node:http services (and PostgreSQL) on loopback, with the bug the detector is for.
//
//   node scripts/record/stories.mjs [OUT_DIR] [story ...]            (default OUT_DIR: pcaps/verify, all stories)
//   node scripts/record/stories.mjs --verify [OUT_DIR] [story ...]   (only re-check existing captures with tshark)
//
// Stories (scripts/record/stories/<story>.mjs; pcaps/verify/README.md has the facts of each capture):
//   n-plus-one, slow, secret-forwarded, missing-propagation, cache, payload-shape, connection-churn.
// n-plus-one needs PostgreSQL on 127.0.0.4:$DEMO_PG_PORT (default 5432) with database `shop` seeded
// from scripts/record/demo/seed.sql and scripts/record/stories/seed.sql: scripts/record-pcaps.sh
// starts such a throwaway cluster (`ONLY=verify bash scripts/record-pcaps.sh`).
//
// As in the demo (scripts/record/demo.mjs): each service is its own process on its own 127.0.0.x
// address (scripts/record/stories/run.mjs) and opens its outgoing connections from that address; the
// services start before tcpdump, the driver (127.0.0.1) runs inside the capture, and the capture stops
// before the services do, so their idle keep-alive connections are still open at its end. After each
// capture, tshark checks that it shows what the story is for and prints the facts.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, startChild, requireTools, waitPort } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const STORIES = ['n-plus-one', 'slow', 'secret-forwarded', 'missing-propagation', 'cache', 'payload-shape',
  'connection-churn'];
const PG = { host: '127.0.0.4', port: Number(process.env.DEMO_PG_PORT ?? 5432) };

/** Only the story's services (and PostgreSQL when it uses it). */
function filterOf(story) {
  const peers = Object.values(story.services);
  if (story.postgres) peers.push(PG);
  return `tcp and (${peers.map((p) => `(host ${p.host} and port ${p.port})`).join(' or ')})`;
}

async function record(name, story, file) {
  if (story.postgres) {
    await waitPort(PG.port, PG.host, 2000).catch(() => {
      throw new Error(`${name} needs PostgreSQL on ${PG.host}:${PG.port} with database shop: run ONLY=verify bash scripts/record-pcaps.sh`);
    });
  }
  const run = (role, opts) => startChild(process.execPath, [join(here, 'stories/run.mjs'), name, role], opts);
  const services = Object.keys(story.services).map((role) => run(role, { ready: 'listening on' }));
  try {
    await Promise.all(services.map((s) => s.ready));
    await capture(file, filterOf(story), async () => {
      const driver = run('driver');
      const { code } = await driver.exited;
      if (code !== 0) {
        throw new Error(`${name} driver failed (${code}):\n${driver.output()}\n${services.map((s) => s.output()).join('\n')}`);
      }
    });
  } finally {
    await Promise.all(services.map((s) => s.stop('SIGTERM')));
  }
}

async function main() {
  requireTools('tcpdump', 'capinfos', 'tshark');
  const args = process.argv.slice(2);
  const verifyOnly = args[0] === '--verify';
  if (verifyOnly) args.shift();
  const outDir = args.length && !STORIES.includes(args[0]) ? args.shift() : 'pcaps/verify';
  const names = args.length ? args : STORIES;
  const unknown = names.filter((n) => !STORIES.includes(n));
  if (unknown.length) throw new Error(`unknown story ${unknown.join(', ')} (stories: ${STORIES.join(', ')})`);
  for (const name of names) {
    const story = await import(`./stories/${name}.mjs`);
    const file = join(outDir, `${name}.pcap`);
    if (!verifyOnly) await record(name, story, file);
    console.log(`  ${name}:\n${story.check(file).map((f) => `    ${f}`).join('\n')}`);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(`record stories: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
