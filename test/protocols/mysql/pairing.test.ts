// Commands and answers paired through the shared Pairing (src/protocols/pairing.ts), as Redis's
// and HTTP/1.1's are: a capture gap in either direction costs the exchange it hit and no other,
// and the queue is bounded. Every conversation also runs with each segment split at every byte.
import { describe, expect, it } from 'vitest';
import { BASE, column, EOF, feed, greeting, login, OK, packet, query, segments, strip, type Run, type Seg } from './harness.js';
import { MYSQL_LIMITS } from '../../../src/protocols/mysql/session.js';
import { UNPAIRED } from '../../../src/protocols/pairing-types.js';

/** The conversation whole, and cut at every byte of its longest segment (with the same frames dropped): the same exchanges. */
function everySplit(segs: Seg[], drop?: Set<number>): Run {
  const whole = feed(segs, { drop });
  const longest = Math.max(...segs.map((s) => s.bytes.length));
  for (let k = 1; k < longest; k++) expect(strip(feed(segs, { cut: k, drop }))).toBe(strip(whole));
  return whole;
}

/** Login, then each query answered by `answer(i)` (one segment per message). */
function conversation(sqls: string[], answer: (i: number) => Buffer[]): Seg[] {
  const steps: [0 | 1, Buffer][] = [[1, greeting(BASE)], [0, login(BASE, 'app', 'shop')], [1, OK(2)]];
  sqls.forEach((sql, i) => {
    steps.push([0, query(sql)]);
    for (const b of answer(i)) steps.push([1, b]);
  });
  return segments(steps);
}

/** A text result set of one column and `rows` rows (EOF after the definitions: no CLIENT_DEPRECATE_EOF). */
function resultSet(name: string, rows: string[]): Buffer[] {
  let seq = 1;
  const out = [packet(seq++, Buffer.from([1])), column(seq++, name), EOF(seq++)];
  for (const r of rows) out.push(packet(seq++, Buffer.concat([Buffer.from([r.length]), Buffer.from(r)])));
  out.push(EOF(seq));
  return out;
}

const frameOf = (segs: Seg[], dir: 0 | 1, nth: number) => segs.filter((s) => s.dir === dir)[nth]!.frame;
const shape = (r: Run) => r.out.map((e) => [e.mysql.request?.command ?? null, e.mysql.request?.query ?? null, e.mysql.response?.affectedRows ?? e.mysql.response?.rows ?? null, e.incomplete ?? null]);

describe('MySQL pairing after a capture gap', () => {
  it('an answer lost in a gap: its command says so (response-lost-in-gap), the answers after it still pair', () => {
    const segs = conversation(['UPDATE a SET x = 1', 'UPDATE b SET x = 1', 'UPDATE c SET x = 1'], (i) => [OK(1, i + 1)]);
    // Server segments: greeting, login OK, then the three OKs: drop the second OK.
    const r = everySplit(segs, new Set([frameOf(segs, 1, 3)]));
    expect(shape(r)).toEqual([
      ['COM_CONNECT', null, null, null],
      ['COM_QUERY', 'UPDATE a SET x = 1', 1, null],
      ['COM_QUERY', 'UPDATE b SET x = 1', null, UNPAIRED.lostInGap],
      ['COM_QUERY', 'UPDATE c SET x = 1', 3, null],
    ]);
  });

  it('a command lost in a gap: its answer is reported alone (no-request-seen), never given to the next command', () => {
    const segs = conversation(['UPDATE a SET x = 1', 'UPDATE b SET x = 1', 'UPDATE c SET x = 1'], (i) => [OK(1, i + 1)]);
    const r = everySplit(segs, new Set([frameOf(segs, 0, 2)])); // client: login, query a, query b
    expect(shape(r)).toEqual([
      ['COM_CONNECT', null, null, null],
      ['COM_QUERY', 'UPDATE a SET x = 1', 1, null],
      [null, null, 2, UNPAIRED.noRequest],
      ['COM_QUERY', 'UPDATE c SET x = 1', 3, null],
    ]);
  });

  it('a gap inside a result set: what was read of it (its columns) goes with its command, marked lost; the next answer pairs', () => {
    const segs = conversation(['SELECT n FROM a', 'SELECT n FROM b'], (i) => resultSet('n', i === 0 ? ['1', '2', '3'] : ['9']));
    // The first answer's second row (server segments: greeting, OK, count, column, EOF, row 1, row 2 …).
    const r = everySplit(segs, new Set([frameOf(segs, 1, 6)]));
    const [, a, b] = r.out;
    expect(a!.incomplete).toBe(UNPAIRED.lostInGap);
    expect(a!.mysql.request?.query).toBe('SELECT n FROM a');
    expect(a!.mysql.response?.columns).toEqual(['n']);
    // The rest of the lost answer (row 3, EOF) starts no answer: skipped until the next answer begins.
    expect(b!.mysql.request?.query).toBe('SELECT n FROM b');
    expect(b!.mysql.response).toMatchObject({ columns: ['n'], rows: 1, preview: [['9']] });
    expect(b!.incomplete).toBeUndefined();
    expect(r.out).toHaveLength(3);
  });

  it('a gap in the middle of a multi-statement answer: the results before it are records, the command is marked lost, later commands pair', () => {
    const MORE = 2 | 8; // autocommit, SERVER_MORE_RESULTS_EXISTS
    const segs = conversation(['UPDATE a SET x = 1; UPDATE b SET x = 2; UPDATE c SET x = 3', 'UPDATE d SET x = 4'],
      (i) => (i === 0 ? [OK(1, 1, MORE), OK(2, 2, MORE), OK(3, 3)] : [OK(1, 4)]));
    const r = everySplit(segs, new Set([frameOf(segs, 1, 3)])); // the second result's OK
    expect(shape(r)).toEqual([
      ['COM_CONNECT', null, null, null],
      ['COM_QUERY', 'UPDATE a SET x = 1', 1, null],
      ['COM_QUERY', 'UPDATE a SET x = 1; UPDATE b SET x = 2; UPDATE c SET x = 3', null, UNPAIRED.lostInGap],
      ['COM_QUERY', 'UPDATE d SET x = 4', 4, null],
    ]);
    expect(r.out[1]!.mysql.request?.part).toBe(0);
  });
});

describe('MySQL pairing limits', () => {
  it(`past ${MYSQL_LIMITS.maxPendingRequests} commands awaiting answers the oldest are reported (evicted), and their late answers are not given to others`, () => {
    const n = MYSQL_LIMITS.maxPendingRequests + 10;
    const steps: [0 | 1, Buffer][] = [[1, greeting(BASE)], [0, login(BASE, 'app', 'shop')], [1, OK(2)]];
    for (let i = 0; i < n; i++) steps.push([0, query(`UPDATE t SET x = ${i}`)]);
    for (let i = 0; i < n; i++) steps.push([1, OK(1, i % 250)]);
    const r = feed(segments(steps));
    expect(r.violations.filter((v) => v.startsWith('mysql.pending_overflow'))).toHaveLength(10);
    const evicted = r.out.filter((e) => e.incomplete === UNPAIRED.evicted);
    // Ten commands without their answers, and ten answers without their commands.
    expect(evicted.filter((e) => e.mysql.request)).toHaveLength(10);
    expect(evicted.filter((e) => !e.mysql.request)).toHaveLength(10);
    const paired = r.out.filter((e) => e.mysql.request?.command === 'COM_QUERY' && !e.incomplete);
    expect(paired).toHaveLength(n - 10);
    // Each paired command has its own answer: UPDATE … = i got OK with i % 250 rows.
    for (const e of paired) expect(e.mysql.response?.affectedRows).toBe(Number(/= (\d+)$/.exec(e.mysql.request!.query!)![1]) % 250);
  });
});
