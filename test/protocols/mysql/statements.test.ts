// The prepared statements a connection remembers are bounded in count (MAX_STATEMENTS) and in the
// bytes of their SQL (MAX_STATEMENT_BYTES): past the budget the oldest is forgotten, and an execute
// of it is reported as an unknown statement, as one prepared before the capture.
import { describe, expect, it } from 'vitest';
import { BASE, feed, greeting, login, OK, packet, segments, u16, u32 } from './harness.js';
import { CAP } from '../../../src/protocols/mysql/messages.js';
import { KEEP_BYTES, MAX_STATEMENT_BYTES } from '../../../src/protocols/mysql/session.js';

const caps = BASE | CAP.DEPRECATE_EOF;
/** One statement's SQL: just under 200 kB, under KEEP_BYTES so it is kept whole. */
const SQL = `SELECT '${'x'.repeat(199_990)}'`;
/** How many such statements fit in the budget. */
const FIT = Math.floor(MAX_STATEMENT_BYTES / Buffer.byteLength(SQL));

const prepare = (sql: string) => packet(0, Buffer.concat([Buffer.from([0x16]), Buffer.from(sql)]));
/** COM_STMT_PREPARE_OK: statement id, no columns, no parameters (so no definitions follow). */
const prepareOk = (id: number) => packet(1, Buffer.concat([Buffer.from([0]), u32(id), u16(0), u16(0), Buffer.from([0]), u16(0)]));
/** COM_STMT_EXECUTE of a statement with no parameters: id, flags, iteration count. */
const execute = (id: number) => packet(0, Buffer.concat([Buffer.from([0x17]), u32(id), Buffer.from([0]), u32(1)]));
const close = (id: number) => packet(0, Buffer.concat([Buffer.from([0x19]), u32(id)]));

/** Prepares statements 1..n (closing those in `closed` right after), then executes `exec`: the execute records. */
function run(n: number, exec: number[], closed = new Set<number>()) {
  const steps: [0 | 1, Buffer][] = [[1, greeting(caps)], [0, login(caps, 'bob', 'shop')], [1, OK(2)]];
  for (let id = 1; id <= n; id++) {
    steps.push([0, prepare(SQL)], [1, prepareOk(id)]);
    if (closed.has(id)) steps.push([0, close(id)]);
  }
  for (const id of exec) steps.push([0, execute(id)], [1, OK(1)]);
  const { out, violations } = feed(segments(steps));
  expect(violations).toEqual([]);
  return out.filter((x) => x.mysql.request?.command === 'COM_STMT_EXECUTE');
}

describe('prepared statements: the byte budget', () => {
  it('the budget holds fewer statements of this size than the count limit, each kept whole', () => {
    expect(Buffer.byteLength(SQL)).toBeLessThan(KEEP_BYTES);
    expect(FIT).toBeGreaterThan(1);
    expect(FIT).toBeLessThan(4096);
  });

  it('up to the budget every statement is remembered; one more forgets the oldest, whose execute is unknown', () => {
    const [first] = run(FIT, [1]);
    expect(first!.mysql.request).toMatchObject({ statementId: 1, query: SQL });
    expect(first!.incomplete).toBeUndefined();

    const [gone, kept, last] = run(FIT + 1, [1, 2, FIT + 1]);
    expect(gone!.mysql.request!.statementId).toBe(1);
    expect(gone!.mysql.request!.query).toBeUndefined();
    expect(gone!.incomplete).toBe('statement-unknown');
    expect(kept!.mysql.request).toMatchObject({ statementId: 2, query: SQL });
    expect(kept!.incomplete).toBeUndefined();
    expect(last!.mysql.request).toMatchObject({ statementId: FIT + 1, query: SQL });
  });

  it('a closed statement gives its bytes back: after closing one, one more fits without forgetting the oldest', () => {
    const [first, closed] = run(FIT + 1, [1, FIT], new Set([FIT]));
    expect(first!.mysql.request).toMatchObject({ statementId: 1, query: SQL });
    expect(first!.incomplete).toBeUndefined();
    expect(closed!.incomplete).toBe('statement-unknown');
  });

  it('a statement id prepared again replaces its SQL and is counted once', () => {
    // The same id prepared FIT + 1 times holds one statement's bytes: nothing else is forgotten.
    const steps: [0 | 1, Buffer][] = [[1, greeting(caps)], [0, login(caps, 'bob')], [1, OK(2)], [0, prepare('SELECT 1')], [1, prepareOk(1)]];
    for (let i = 0; i <= FIT; i++) steps.push([0, prepare(SQL)], [1, prepareOk(2)]);
    steps.push([0, execute(1)], [1, OK(1)]);
    const ex = feed(segments(steps)).out.filter((x) => x.mysql.request?.command === 'COM_STMT_EXECUTE');
    expect(ex[0]!.mysql.request).toMatchObject({ statementId: 1, query: 'SELECT 1' });
  });
});
