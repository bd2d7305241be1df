import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FlowRecord, GrpcFlow } from '../../src/flows/record.js';
import { analyzeFile } from '../../src/pipeline/analyze.js';
import { compileFilter, FilterError, MAX_FILTER_LENGTH } from '../../src/query/filter.js';
import { MAX_NESTING } from '../../src/query/syntax.js';
import { type CelT, RECORD } from '../../src/query/types.js';
import { only } from '../helpers/records.js';

/** Every test reads real records, decoded from the recorded captures under pcaps/. */
const load = async (path: string): Promise<FlowRecord[]> => (await analyzeFile(path)).records!;
let demo: FlowRecord[];
let grpc: GrpcFlow[];
let h2load: FlowRecord[];
let slow: FlowRecord[];
let all: FlowRecord[];

beforeAll(async () => {
  demo = await load('pcaps/demo/demo.pcap');
  grpc = only([...(await load('pcaps/grpc/error-status.pcap')), ...(await load('pcaps/grpc/unary.pcap')), ...(await load('pcaps/grpc/deadline.pcap'))], 'grpc');
  h2load = await load('pcaps/http2/h2load.pcap');
  slow = await load('pcaps/verify/slow.pcap');
  all = [];
  for (const dir of readdirSync('pcaps')) {
    for (const f of readdirSync(join('pcaps', dir)).filter((x) => x.endsWith('.pcap'))) all.push(...(await load(join('pcaps', dir, f))));
  }
});

const matching = (records: FlowRecord[], expr: string): FlowRecord[] => records.filter(compileFilter(expr));
const ids = (records: FlowRecord[]): string[] => records.map((r) => r.id);

/** The FilterError a bad expression gives. */
function failure(expr: string): FilterError {
  try {
    compileFilter(expr);
  } catch (e) {
    if (e instanceof FilterError) return e;
    throw e;
  }
  throw new Error(`compiled: ${expr}`);
}

/** The demo's records with the names an identity source (the live agent) would give the services. */
function named(records: FlowRecord[]): FlowRecord[] {
  const names: Record<number, string> = { 8080: 'orders', 8081: 'payment', 5432: 'orders-db' };
  return records.map((r) => ({ ...r, dst: { ...r.dst, name: names[r.dst.port], namespace: 'shop' } }));
}

describe('the examples of the issue', () => {
  it('http && response.status >= 500 && dst.name == "payment": the three 503s from the payment service', () => {
    const hits = matching(named(demo), 'http && response.status >= 500 && dst.name == "payment"');
    expect(hits).toHaveLength(3);
    for (const r of hits) {
      expect(r.response).toMatchObject({ status: 503 });
      expect(r.dst).toMatchObject({ ip: '127.0.0.3', port: 8081 });
    }
    // Without an identity source no peer has a name: no match, and no error.
    expect(matching(demo, 'http && response.status >= 500 && dst.name == "payment"')).toEqual([]);
    expect(matching(demo, 'http && response.status >= 500')).toHaveLength(3);
  });

  it('grpc && response.grpcStatus != 0: the calls that failed, not the OK ones', () => {
    const hits = matching(grpc, 'grpc && response.grpcStatus != 0');
    const oracle = grpc.filter((r) => r.protocol === 'grpc' && r.response && 'grpcStatus' in r.response && r.response.grpcStatus !== 0);
    expect(ids(hits)).toEqual(ids(oracle));
    expect(hits.map((r) => (r.response as { grpcStatus: number }).grpcStatus).sort()).toEqual([12, 3, 4, 5, 5]);
    expect(matching(grpc, 'grpc && response.grpcStatus == 0').length).toBeGreaterThanOrEqual(5);
  });

  it('postgres && request.query.contains("orders"): the 12 repeated SELECTs', () => {
    const hits = matching(demo, 'postgres && request.query.contains("orders")');
    expect(hits).toHaveLength(12);
    for (const r of hits) expect(r.request).toMatchObject({ query: 'SELECT id, customer, total, status FROM orders WHERE id = $1', params: ['42'] });
  });

  it('duration_ms > 200: the slow checkout in the demo, the four ~1.2 s hops in slow.pcap', () => {
    expect(matching(demo, 'duration_ms > 200').map((r) => (r.request as { path: string }).path)).toEqual(['/checkout']);
    const hits = matching(slow, 'duration_ms > 1000');
    expect(hits.map((r) => (r.request as { path: string }).path).sort()).toEqual(['/index?q=lemon', '/index?q=vanilla', '/search?q=lemon', '/search?q=vanilla']);
    expect(ids(matching(slow, 'duration_ms > 200'))).toEqual(ids(slow.filter((r) => r.durationMs > 200)));
  });
});

describe('values', () => {
  it('record ints compare and compute as CEL ints; milliseconds as doubles, against int and double literals', () => {
    const e503 = ids(demo.filter((r) => (r.response as { status?: number } | undefined)?.status === 503));
    for (const expr of ['response.status == 503', 'response.status >= 500', 'response.status / 100 == 5', 'response.status % 500 == 3', 'response.status in [500, 503]', 'response.status == 503.0', 'int(response.status) == 503']) {
      expect(ids(matching(demo, expr)), expr).toEqual(e503);
    }
    expect(ids(matching(demo, 'duration_ms > 200.5'))).toEqual(ids(demo.filter((r) => r.durationMs > 200.5)));
    expect(ids(matching(demo, 'duration_ms >= 1 && duration_ms < 2'))).toEqual(ids(demo.filter((r) => r.durationMs >= 1 && r.durationMs < 2)));
    expect(matching(demo, 'dst.port == 8081 && src.port > 1024u')).toHaveLength(4);
    expect(matching(demo, 'response.rows == 1 && size(response.columns) == 4 && response.preview[0][1] == "alice"')).toHaveLength(12);
    expect(matching(demo, 'request.bodySize > 0 && response.bodySize > 0').length).toBeGreaterThan(0);
  });

  it('protocol booleans, the protocol string, ids, and the gRPC service and method', () => {
    const count = (p: string) => demo.filter((r) => r.protocol === p).length;
    expect(matching(demo, 'http')).toHaveLength(count('http'));
    expect(matching(demo, 'postgres')).toHaveLength(count('postgres'));
    expect(matching(demo, 'protocol == "postgres"')).toHaveLength(count('postgres'));
    expect(matching(h2load, 'http2 && !http && !grpc')).toHaveLength(h2load.length);
    const first = demo[0]!;
    expect(ids(matching(demo, `id == "${first.id}"`))).toEqual([first.id]);
    expect(matching(demo, `connectionId == "${first.connectionId}"`)).toHaveLength(demo.filter((r) => r.connectionId === first.connectionId).length);
    expect(matching(grpc, 'grpc_service == "tapwire.demo.Orders" && grpc_method == "DeleteOrder"')).toHaveLength(1);
    expect(matching(demo, 'grpc_service == ""')).toHaveLength(demo.length);
  });

  it('string operations: contains, startsWith, endsWith, matches (RE2), the strings extension, size', () => {
    expect(matching(demo, 'request.path.startsWith("/orders/")')).toHaveLength(12);
    expect(matching(demo, 'request.path.endsWith("/payments")')).toHaveLength(4);
    expect(matching(demo, 'request.path.matches("^/orders/[0-9]+$")')).toHaveLength(12);
    expect(matching(demo, 'request.path.matches("^/(payments|checkout)$")')).toHaveLength(5);
    expect(matching(demo, 'request.fingerprint.matches("(?i)SELECT .* FROM ORDERS")')).toHaveLength(12);
    expect(matching(demo, 'request.path.upperAscii() == "/PAYMENTS"')).toHaveLength(4);
    expect(matching(demo, 'request.path.split("/")[1] == "orders"')).toHaveLength(12);
    expect(matching(demo, 'request.headers["x-request-id"].startsWith("req-")').length).toBeGreaterThan(0);
    expect(matching(demo, '"authorization" in request.headers')).toHaveLength(17);
    expect(matching(demo, 'request.headers.exists(h, h == "authorization" && request.headers[h].startsWith("Bearer "))')).toHaveLength(17);
    expect(matching(h2load, 'request.headers["user-agent"].contains("h2load") && response.body.contains("\\"ok\\":true")')).toHaveLength(h2load.length);
    expect(matching(h2load, 'size(response.body) == response.bodySize')).toHaveLength(h2load.length);
  });

  it('times: start and end are timestamps, end - start a duration, for time ranges', () => {
    const iso = (t: number) => `${new Date(Math.floor(t * 1000)).toISOString().slice(0, 19)}.${String(Math.round(t * 1e6) % 1_000_000).padStart(6, '0')}Z`;
    const [from, to] = [demo[6]!.start, demo[20]!.start].sort();
    const inRange = demo.filter((r) => r.start >= from! && r.start < to!);
    expect(inRange.length).toBeGreaterThan(5);
    expect(ids(matching(demo, `start >= timestamp("${iso(from!)}") && start < timestamp("${iso(to!)}")`))).toEqual(ids(inRange));
    expect(ids(matching(demo, `start == timestamp("${iso(demo[3]!.start)}")`))).toEqual([demo[3]!.id]);
    expect(matching(demo, 'start > timestamp("2026-11-21T10:00:00Z") && end < timestamp("2026-11-22T00:00:00Z")')).toHaveLength(demo.length);
    expect(matching(demo, 'start.getFullYear() == 2026 && start.getHours() == 12')).toHaveLength(demo.length);
    expect(ids(matching(demo, 'end - start > duration("200ms")'))).toEqual(ids(matching(demo, 'duration_ms > 200')));
    expect(ids(matching(slow, 'end - start >= duration("1.2s")'))).toEqual(ids(slow.filter((r) => r.end - r.start >= 1.2)));
    expect(matching(slow, 'end > start + duration("1s")')).toHaveLength(4);
  });

  it('HTTP/2 errors, whole records and PostgreSQL session facts', () => {
    const reset = grpc.filter((r) => r.error);
    expect(reset).toHaveLength(1);
    expect(ids(matching(grpc, 'error != null && error.code == "CANCEL" && error.frame == "RST_STREAM" && error.by == "client"'))).toEqual(ids(reset));
    expect(matching(grpc, 'error == null')).toHaveLength(grpc.length - 1);
    expect(matching(grpc, 'record.grpc.timeoutMs < 100 && record.grpc.deadlineExceeded')).toHaveLength(1);
    expect(matching(demo, 'record.postgres.database == "shop" && record.postgres.application == "order-service"')).toHaveLength(12);
    expect(matching(demo, 'record.connectMs > 0')).toHaveLength(demo.filter((r) => r.connectMs !== undefined).length);
    expect(matching(demo, 'record.durationMs == duration_ms && record.request.size > 0')).toHaveLength(demo.length);
  });

  it('macros over lists and maps', () => {
    expect(matching(demo, 'request.params.all(p, p == "42")')).toHaveLength(12);
    expect(matching(demo, 'response.columns.exists_one(c, c == "customer")')).toHaveLength(12);
    expect(matching(demo, 'response.columns.filter(c, c.startsWith("c")).size() == 1')).toHaveLength(12);
    expect(matching(demo, 'response.headers.map(h, h.size()).exists(n, n > 12)').length).toBeGreaterThan(0);
    expect(matching(grpc, 'request.messages.exists(m, m.fields.exists(f, f.no == 1 && string(f.value).startsWith("missing-")))')).toHaveLength(1);
  });
});

describe('missing halves and fields', () => {
  it('has() tells what a record holds; a missing half is null', () => {
    const withStatus = demo.filter((r) => r.response && 'status' in r.response);
    expect(ids(matching(demo, 'has(response.status)'))).toEqual(ids(withStatus));
    expect(matching(demo, '!has(response.status)')).toHaveLength(demo.length - withStatus.length);
    expect(matching(demo, 'has(dst.name)')).toEqual([]);
    expect(matching(named(demo), 'has(dst.name) && has(dst.namespace) && !has(dst.workload)')).toHaveLength(demo.length);

    const mix = all.filter((r) => r.response === undefined);
    expect(mix.length).toBeGreaterThan(10);
    expect(ids(matching(mix, 'response == null && !has(response.status)'))).toEqual(ids(mix));
    expect(matching(mix, 'response != null')).toEqual([]);
  });

  it('a comparison on what a record lacks is no match, never an exception', () => {
    const noRequest = all.filter((r) => r.request === undefined);
    expect(noRequest.length).toBeGreaterThan(10);
    for (const expr of ['request.method == "GET"', '!(request.method == "GET")', 'request.headers["x"] == "y"', 'request.path.matches("^/")', 'size(request.headers) > 0']) {
      expect(matching(noRequest, expr), expr).toEqual([]);
    }
    // An error on one side of || does not hide a true on the other (CEL's commutative logic).
    expect(matching(noRequest, 'request.method == "GET" || incomplete')).toHaveLength(noRequest.filter((r) => r.incomplete).length);
    expect(matching(noRequest, 'request.method == "GET" || true')).toHaveLength(noRequest.length);
    // Every variable and many fields on every record of every capture: a boolean each time.
    const keep = compileFilter('response.status >= 500 || response.grpcStatus != 0 || response.error.code == "22012" || dst.name == "x" || error.code == "CANCEL" || request.params[3] == 1 || 1 / (response.rows - response.rows) == 1');
    for (const r of all) expect(typeof keep(r)).toBe('boolean');
    expect(all.filter(keep).length).toBeGreaterThan(0);
  });

  it('reads only the fields it names, with the same result as reading the whole record', () => {
    for (const [part, whole] of [
      ['request.method == "POST"', 'request.exists(k, k == "method") && request["method"] == "POST"'],
      ['has(response.status)', '"status" in response'],
      ['record.postgres.user == "postgres"', 'record.exists(k, k == "postgres") && record["postgres"].user == "postgres"'],
    ] as const) {
      expect(ids(matching(demo, part)), part).toEqual(ids(matching(demo, whole)));
    }
  });
});

describe('bad expressions: a FilterError with the position', () => {
  const at = (expr: string, position: number, what: RegExp) => {
    const e = failure(expr);
    expect({ expr, position: e.position }).toEqual({ expr, position });
    expect(e.expression).toBe(expr);
    expect(e.message).toMatch(what);
    expect(e.message).toContain(`at position ${position}:`);
  };

  it('syntax errors, where they are', () => {
    at('http && (response.status >= 500', 31, /expected '\)' to close the '\(' at position 8/);
    at('http && response.status >= ', 27, /ends where a value was expected/);
    at('response.status = 500', 16, /'=' is not an operator: compare with '=='/);
    at('http & grpc', 5, /use '&&'/);
    at('request.path == "/orders', 16, /string is not closed/);
    at('http grpc', 5, /unexpected 'grpc' after a complete expression/);
    at('http && response.status >= 500)', 30, /'\)' closes nothing/);
    at('[1, 2', 5, /expected '\]'/);
    at('f(1,)', 4, /expected a value after ','/);
    at('response.', 9, /expected a field or method name/);
    at('if', 0, /reserved word/);
    at('', 0, /ends where a value was expected/);
    at('http && 0x', 8, /hexadecimal/);
    at('http && #', 8, /unexpected character "#"/);
    at('-!http', 1, /'!' cannot follow '-' here/);
    at('size(request.headers) > -1u', 25, /an unsigned number cannot be negative/);
    // The grammar allows it, but @bufbuild/cel 0.6.1 reads `trueish` as `true ish`.
    at('[1].exists(trueish, trueish > 0)', 11, /a name cannot start with 'true' or 'false' here/);
  });

  it('unknown variables, fields and functions, with a suggestion', () => {
    at('htpp && duration_ms > 1', 0, /unknown variable 'htpp' \(did you mean 'http'\?\)/);
    at('http && respons.status == 200', 8, /unknown variable 'respons' \(did you mean 'response'\?\)/);
    at('response.stauts >= 500', 9, /response has no field 'stauts' \(did you mean 'status'\?\)/);
    at('has(request.header)', 12, /request has no field 'header' \(did you mean 'headers'\?\)/);
    at('dst.hostname == "x"', 4, /peer has no field 'hostname'/);
    at('http && foo(1)', 8, /unknown function 'foo'/);
    at('request.path.lowercase() == "x"', 13, /unknown method 'lowercase'/);
    at('has(response)', 0, /has\(\) takes a field selection/);
    at('request.params.exists(1, true)', 15, /exists\(\) takes a variable name/);
  });

  it('type errors CEL finds before running', () => {
    at('duration_ms > "200"', 12, /no matching overload for '>' applied to \(double, string\)/);
    at('protocol.contains(1)', 9, /no method 'contains' on string takes \(int\)/);
    at('response.status.startsWith("5")', 16, /no method 'startsWith' on int/);
    at('http && protocol', 8, /expected true or false here, but this is string/);
    at('protocol == 1', 9, /'==' compares string with int, which are never equal/);
    at('start > 5', 6, /no matching overload for '>' applied to \(timestamp, int\)/);
    at('duration_ms * 2 > 10', 12, /no matching overload for '\*' applied to \(double, int\)/);
    at('response.status', 0, /a filter is true or false, but this expression is int/);
    at('dst.port.name == "x"', 9, /int has no fields/);
    at('request.path.matches("(")', 21, /bad regular expression: .*missing closing \)/);
    at('start > timestamp("yesterday")', 18, /bad timestamp "yesterday": expected RFC 3339/);
    at('end - start > duration("2 seconds")', 23, /bad duration "2 seconds"/);
  });

  it('too long, or nested too deeply', () => {
    const longest = `http${' '.repeat(MAX_FILTER_LENGTH - 4)}`;
    expect(longest).toHaveLength(MAX_FILTER_LENGTH);
    expect(() => compileFilter(longest)).not.toThrow();
    at(`${longest} `, MAX_FILTER_LENGTH, /4097 characters long; the limit is 4096/);
    at(`${'('.repeat(MAX_NESTING + 1)}http${')'.repeat(MAX_NESTING + 1)}`, MAX_NESTING, /nests more than 100 levels deep/);
    at(`${'('.repeat(1500)}http${')'.repeat(1500)}`, MAX_NESTING, /nests more than 100 levels deep/);
    at(`${'!'.repeat(1000)}http`, MAX_NESTING, /nests more than 100 levels deep/);
    expect(() => compileFilter(`${'('.repeat(MAX_NESTING)}http${')'.repeat(MAX_NESTING)}`)).not.toThrow();
  });

  it('the message shows the expression with a caret under the position', () => {
    const e = failure('http && respons.status == 200');
    expect(e.message).toBe("filter: unknown variable 'respons' (did you mean 'response'?) at position 8:\n  http && respons.status == 200\n          ^");
    expect(e).toBeInstanceOf(Error);
    const long = failure(`${'http && '.repeat(60)}nope`);
    const [, line, caret] = long.message.split('\n');
    expect(line!.startsWith('  …')).toBe(true);
    expect(line![caret!.indexOf('^')]).toBe('n');
  });
});

it('accepts the CEL grammar: literals, operators, macros, comments', () => {
  for (const expr of [
    'true', '!false', '-1 < 0', '1u == 1u', '0x1F == 31', '1.5e3 > 1e2', '.5 < 1.0', '"a" + \'b\' == "ab"', 'r"\\d" == "\\\\d"',
    '"""x"""  == \'\'\'x\'\'\'', 'b"abc" == bytes("abc")', 'null == null', '[1, 2, 3,][1] == 2', '{"a": 1, "b": 2,}["b"] == 2',
    'http ? true : false', 'http || grpc ? duration_ms > 1.0 : false', '// a comment\nhttp', 'type(1) == int', 'dyn(1) == 1',
    '[1, 2].map(x, x * 2) == [2, 4]', '{"k": "v"}.all(k, k == "k")', 'google.protobuf.Duration{seconds: 1} > duration("0s")',
    'strings.quote("a") == "\\"a\\""', 'request.headers.size( ) >= 0', 'request.path.trim( ) != "" // a comment\n// another', '[,] == [] && {,} == {}', '-1 < 0 && !!true && --1 == 1',
  ]) {
    expect(() => compileFilter(expr), expr).not.toThrow();
  }
  expect(matching(demo, '[1, 2].map(x, x * 2) == [2, 4] && {"a": 1}.all(k, k == "a") && google.protobuf.Duration{seconds: 1} > duration("0s")')).toHaveLength(demo.length);
});

it('every field of every recorded record is a field the filter knows, with its type', () => {
  const problems = new Set<string>();
  const walk = (v: unknown, t: CelT, path: string): void => {
    if (v === undefined || v === null || t.k === 'dyn') return;
    if (t.k === 'struct') {
      for (const [k, x] of Object.entries(v as object)) {
        if (!Object.hasOwn(t.fields, k)) problems.add(`${path}.${k}: not declared`);
        else walk(x, t.fields[k]!, `${path}.${k}`);
      }
    } else if (t.k === 'list') (v as unknown[]).forEach((x) => walk(x, t.elem, `${path}[]`));
    else if (t.k === 'map') Object.values(v as object).forEach((x) => walk(x, t.value, `${path}{}`));
    else if (t.k === 'int' && !Number.isInteger(v)) problems.add(`${path}: ${String(v)} is not an int`);
    else if (t.k === 'double' && typeof v !== 'number') problems.add(`${path}: not a number`);
    else if ((t.k === 'string' && typeof v !== 'string') || (t.k === 'bool' && typeof v !== 'boolean')) problems.add(`${path}: not a ${t.k}`);
  };
  for (const r of all) walk(r, RECORD, 'record');
  expect([...problems]).toEqual([]);
  expect(all.length).toBeGreaterThan(2000);
});

describe('tapwire analyze --filter', () => {
  beforeAll(() => {
    execFileSync(process.execPath, ['scripts/build-if-needed.mjs'], { stdio: 'inherit' });
  });
  const tapwire = (args: string[]) => {
    const r = spawnSync(process.execPath, ['dist/cli/main.js', ...args], {
      encoding: 'utf8', env: { ...process.env, XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'tapwire-filter-')), TAPWIRE_REDACT_KEY: '' },
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('outputs only the matching flows; the summary counts all flows and says how many matched', () => {
    const r = tapwire(['analyze', 'pcaps/demo/demo.pcap', '--format', 'jsonl', '--filter', 'http && response.status >= 500']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
    expect(lines.map((f) => [f.dst.port, (f.response as { status: number }).status])).toEqual([[8081, 503], [8081, 503], [8081, 503]]);
    expect(r.stderr).toMatch(/^tapwire: 85 packets, [\d.]+ MB, 29 flows \(3 matched the filter\), 0 decode problems in /m);

    const pg = tapwire(['analyze', 'pcaps/demo/demo.pcap', '--filter', 'postgres && request.query.contains("orders")']);
    expect(pg.status).toBe(0);
    const rows = pg.stdout.split('\n').filter((l) => /^\d\d:/.test(l));
    expect(rows).toHaveLength(12);
    for (const row of rows) expect(row).toMatch(/ pg +EXEC .*SELECT id, customer, total, status FROM orders WHERE id = \$1/);
    expect(pg.stderr).toMatch(/29 flows \(12 matched the filter\)/);
  });

  it('--stats records the filter and the matches; the flows stay all of them', () => {
    const stats = join(mkdtempSync(join(tmpdir(), 'tapwire-filter-')), 'stats.json');
    const r = tapwire(['analyze', 'pcaps/verify/slow.pcap', '--format', 'jsonl', '--filter', 'duration_ms > 1000', '--stats', stats]);
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(4);
    expect(JSON.parse(readFileSync(stats, 'utf8'))).toMatchObject({ flows: 63, filter: 'duration_ms > 1000', matched: 4 });
  });

  it('a bad expression exits 2 naming the position, before the capture is read', () => {
    const r = tapwire(['analyze', 'no-such-capture.pcap', '--filter', 'http && response.stauts >= 500']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("tapwire: --filter: response has no field 'stauts' (did you mean 'status'?) at position 17:\n  http && response.stauts >= 500\n                   ^\n");
    const syntax = tapwire(['analyze', 'pcaps/demo/demo.pcap', '--filter', 'http && (response.status >= 500']);
    expect(syntax.status).toBe(2);
    expect(syntax.stderr).toMatch(/^tapwire: --filter: expected '\)' to close the '\(' at position 8, found the end of the expression at position 31:/);
  });
});
