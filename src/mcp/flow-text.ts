import { endpoint } from '../common/index.js';
import { grpcStatusLabel, httpHalves, recordModule, sqlHalves, type MysqlRecordRequest, type MysqlRecordResponse, type MysqlValue, type RedisFlow, type Peer, type PgNotice, type PgRecordRequest, type PgRecordResponse, type PgValue, type RawField, type RecordHalf, type RecordMessage, type RecordRequest, type RecordResponse } from '../flows/index.js';
import type { BoundedFlow } from './flow-bound.js';
import { flowRow, rowLine } from './rows.js';
import { iso, plural, scalar, truncatedLines } from './text.js';

/**
 * get_flow's text copy: the flow as structuredContent holds it (the bounded view, so whatever the
 * bound cut is cut here too), in plain lines: peers and timings, each side's start line, headers,
 * trailers and body preview, gRPC messages, the SQL with its parameters and result rows, then
 * which payloads were left out or cut and why. A field this file does not know yet is still
 * shown, as `name: value`, so the text never carries less than the record.
 */
export function flowDetailText(v: BoundedFlow, bodiesAsked: boolean): string {
  const f = v.flow;
  const lines = [rowLine(flowRow(f))];
  lines.push(`connection ${f.connectionId}${'streamId' in f && f.streamId !== undefined ? `, stream ${f.streamId}` : ''}: client ${peer(f.src)} → server ${peer(f.dst)}`);
  lines.push(`time: ${iso(f.start)} to ${iso(f.end)}, ${f.durationMs} ms`
    + `${f.connectMs !== undefined ? `; ${f.connectMs} ms from the TCP SYN to its first byte` : ''}`);
  if (f.incomplete) lines.push(`incomplete evidence: ${f.incompleteReason ?? 'unknown'}`);
  if ('upgrade' in f && f.upgrade) lines.push(`the connection switched to ${f.upgrade} after this exchange`);
  if ('error' in f && f.error) lines.push(`stream ended by the ${f.error.by}: ${f.error.frame} ${f.error.code}`);
  if ('headersPartial' in f && f.headersPartial) lines.push('some header fields could not be decoded (HPACK state unknown) and are left out');
  if ('grpc' in f && f.grpc) {
    const g = f.grpc;
    lines.push(`grpc: service ${g.service}, method ${g.method}${g.encoding ? `, encoding ${g.encoding}` : ''}`
      + `${g.timeoutMs !== undefined ? `, timeout ${g.timeoutMs} ms` : ''}${g.deadlineExceeded ? ', deadline exceeded' : ''}`);
  }
  if ('postgres' in f && f.postgres) {
    const { notification: n, ...s } = f.postgres;
    const session = Object.entries(s).map(([k, x]) => `${k} ${scalar(x)}`).join(', ');
    if (session) lines.push(`session: ${session}`);
    if (n) lines.push(`notification: NOTIFY from backend pid ${n.pid} on channel ${n.channel}, payload ${JSON.stringify(n.payload)}`);
  }
  if ('redis' in f && f.redis) {
    const x = f.redis;
    lines.push(`session: RESP${x.resp}${x.transaction !== undefined ? `, in transaction (MULTI) #${x.transaction}` : ''}${x.queued ? ', queued: its result came in EXEC\'s reply' : ''}`);
  }
  const ctx = { payloads: v.payloads, bodiesAsked };
  if ('mysql' in f && f.mysql) {
    const session = Object.entries(f.mysql).map(([k, x]) => `${k} ${scalar(x)}`).join(', ');
    if (session) lines.push(`session: ${session}`);
  }
  if (f.protocol === 'mysql') {
    lines.push(...(f.request ? mysqlRequest(f.request) : ['command: not seen']));
    lines.push(...(f.response ? mysqlResponse(f.response, ctx) : ['result: not seen']));
  } else if (sqlHalves(f)) {
    // A NOTIFY is a message of its own: no statement, no result.
    const notify = f.postgres?.notification !== undefined;
    if (f.request) lines.push(...pgRequest(f.request));
    else if (!notify) lines.push('statement: not seen');
    if (f.response) lines.push(...pgResponse(f.response, ctx));
    else if (!notify) lines.push('result: not seen');
  } else if (recordModule(f).halves === 'command') {
    lines.push(...commandLines(f as RedisFlow));
  } else if (!httpHalves(f)) {
    // A handshake's hellos (TLS): no headers or bodies; each field as `name: value`.
    const hello = (h: object | undefined, side: string): string[] => (h
      ? [`${side}${wire(h as RecordHalf)}`, ...other(h, ['start', 'end', 'frames', 'size'], '  ')]
      : [`${side}: not seen`]);
    lines.push(...hello(f.request, 'request'), ...hello(f.response, 'response'));
  } else {
    const req = f.request as RecordRequest | undefined, res = f.response as RecordResponse | undefined;
    if (req) lines.push(...httpRequest(req, ctx));
    else lines.push('request: not seen');
    if (res) lines.push(...httpResponse(res, ctx));
    else lines.push('response: not seen');
  }
  lines.push(...other(f, FLOW_KEYS, ''));
  lines.push(v.payloads.length ? `payloads left out or cut: ${v.payloads.join('; ')}` : 'payloads: complete');
  lines.push(...truncatedLines(v.truncated));
  return lines.join('\n');
}

interface Ctx {
  payloads: string[];
  bodiesAsked: boolean;
}

const FLOW_KEYS = ['id', 'protocol', 'connectionId', 'src', 'dst', 'start', 'end', 'durationMs', 'connectMs', 'request', 'response', 'incomplete',
  'incompleteReason', 'upgrade', 'streamId', 'error', 'grpc', 'headersPartial', 'postgres', 'redis', 'mysql'];
const HALF_KEYS = ['start', 'end', 'frames', 'size', 'headers', 'trailers', 'bodySize', 'body', 'bodyEncoding', 'bodyTruncated', 'bodyDecodeError', 'messages', 'messagesDropped'];
const REQUEST_KEYS = [...HALF_KEYS, 'method', 'path', 'version', 'authority', 'scheme'];
const RESPONSE_KEYS = [...HALF_KEYS, 'status', 'reason', 'version', 'interim', 'grpcStatus', 'grpcMessage'];
const PG_REQUEST_KEYS = ['start', 'end', 'frames', 'size', 'message', 'query', 'fingerprint', 'statement', 'portal', 'params', 'pid'];
const PG_RESPONSE_KEYS = ['start', 'end', 'frames', 'size', 'command', 'rows', 'columns', 'preview', 'error', 'notices', 'copy', 'suspended', 'empty'];

function peer(p: Peer): string {
  const { ip: _ip, port: _port, ...rest } = p;
  const about = Object.entries(rest).map(([k, x]) => `${k} ${scalar(x)}`).join(', ');
  return `${endpoint(p)}${about ? ` (${about})` : ''}`;
}

/** "; 345 bytes on the wire, at … to …, frames 67-69". */
function wire(h: { start: number; end: number; size: number; frames?: [number, number] }): string {
  return `; ${plural(h.size, 'byte')} on the wire, at ${iso(h.start)}${h.end !== h.start ? ` to ${iso(h.end)}` : ''}`
    + `${h.frames ? `, frames ${h.frames[0]}-${h.frames[1]}` : ''}`;
}

function httpRequest(q: RecordRequest, ctx: Ctx): string[] {
  const target = `${q.authority !== undefined ? ` (authority ${q.authority}${q.scheme ? `, scheme ${q.scheme}` : ''})` : ''}`;
  return [`request: ${q.method} ${q.path} HTTP/${q.version}${target}${wire(q)}`, ...half(q, 'request', ctx), ...other(q, REQUEST_KEYS, '  ')];
}

function httpResponse(s: RecordResponse, ctx: Ctx): string[] {
  const status = s.status !== undefined ? `${s.status}${s.reason ? ` ${s.reason}` : ''}` : 'status not seen';
  const grpc = s.grpcStatus !== undefined
    ? `; grpc-status ${grpcStatusLabel(s.grpcStatus).slice('grpc '.length)}` + (s.grpcMessage ? ` (grpc-message ${JSON.stringify(s.grpcMessage)})` : '')
    : '';
  const lines = [`response: ${status} HTTP/${s.version}${grpc}${wire(s)}`];
  for (const i of s.interim ?? []) lines.push(`  interim response: ${i.status} at ${iso(i.time)}${i.frame !== undefined ? `, frame ${i.frame}` : ''}`);
  return [...lines, ...half(s, 'response', ctx), ...other(s, RESPONSE_KEYS, '  ')];
}

/** Headers, trailers, body and messages of one HTTP side. */
function half(h: RecordHalf & { messages?: RecordMessage[]; messagesDropped?: number }, side: string, ctx: Ctx): string[] {
  const lines = [...fields('headers', h.headers), ...(h.trailers ? fields('trailers', h.trailers) : [])];
  lines.push(...body(h, side, ctx));
  if (h.messages || h.messagesDropped) {
    const n = h.messages?.length ?? 0;
    lines.push(`  messages (${n}${h.messagesDropped ? ` kept; ${h.messagesDropped} more not kept by the capture, --max-messages` : ''})${n ? ':' : ''}`);
    h.messages?.forEach((m, i) => lines.push(`    [${i}] ${message(m, `${side}.messages[${i}]`, ctx)}`));
  }
  return lines;
}

function fields(what: string, map: Record<string, string>): string[] {
  const entries = Object.entries(map);
  if (entries.length === 0) return [`  ${what}: none`];
  // Repeated fields are joined by "\n" (Set-Cookie): one line each.
  return [`  ${what} (${entries.length}):`, ...entries.flatMap(([k, x]) => String(x).split('\n').map((line) => `    ${k}: ${line}`))];
}

function body(h: RecordHalf & { messages?: RecordMessage[] }, side: string, ctx: Ctx): string[] {
  const cut = ctx.payloads.find((p) => p.startsWith(`${side}.body `));
  const notes = [
    ...(h.bodyTruncated ? ['the capture kept only its start'] : []),
    ...(h.bodyDecodeError ? [`Content-Encoding not undone (${h.bodyDecodeError}): encoded bytes`] : []),
  ];
  if (h.body === undefined) {
    if (h.bodySize === 0) return ['  body: empty'];
    const why = cut ? (ctx.bodiesAsked ? 'left out to fit the bound' : 'not included (include_bodies: true shows it)')
      : h.messages ? 'kept as the messages below' : 'not captured';
    return [`  body: ${plural(h.bodySize, 'byte')}, ${why}`];
  }
  if (h.bodyEncoding === 'base64') notes.push('not text: base64');
  if (cut) notes.push(cut.slice(side.length + 6).replace(/^\(|\)$/g, ''));
  return [`  body (${plural(h.bodySize, 'byte')}${notes.length ? `; ${notes.join('; ')}` : ''}):`, ...h.body.split(/\r?\n/).map((l) => `    ${l}`)];
}

function message(m: RecordMessage, path: string, ctx: Ctx): string {
  const head = `${plural(m.size, 'byte')} at ${iso(m.time)}${m.compressed ? ', compressed' : ''}${m.truncated ? ', only its start kept' : ''}`;
  let content: string;
  if (m.json !== undefined) content = JSON.stringify(m.json);
  else if (m.fields !== undefined) content = `fields ${rawFields(m.fields)}`;
  else if (m.data !== undefined) content = `base64 ${m.data}`;
  else if (ctx.payloads.some((p) => p.startsWith(`${path} `))) content = ctx.bodiesAsked ? 'content left out to fit the bound' : 'content not included (include_bodies: true shows it)';
  else content = 'no content kept';
  const known = new Set(['time', 'size', 'compressed', 'truncated', 'json', 'fields', 'data', 'error']);
  const rest = Object.entries(m).filter(([k]) => !known.has(k)).map(([k, x]) => `${k} ${scalar(x)}`);
  return `${head}: ${content}${m.error ? `; error: ${m.error}` : ''}${rest.length ? `; ${rest.join(', ')}` : ''}`;
}

/** Schemaless protobuf as `{1: "ord-00001", 2: 1, 3: {1: "x"}}`: field numbers, values, nested messages. */
function rawFields(fs: RawField[]): string {
  return `{${fs.map((x) => `${x.no}: ${x.fields ? rawFields(x.fields) : x.base64 ? `base64 ${x.value}` : JSON.stringify(x.value ?? null)}`).join(', ')}}`;
}

function pgRequest(q: PgRecordRequest): string[] {
  const prepared = q.statement !== undefined ? ` of prepared statement ${q.statement === '' ? '(unnamed)' : JSON.stringify(q.statement)}` : '';
  const lines = [`statement: ${q.message}${prepared}${q.portal ? `, portal ${JSON.stringify(q.portal)}` : ''}`
    + `${q.pid !== undefined ? `, targeting backend pid ${q.pid}` : ''}${wire(q)}`];
  if (q.query !== undefined) lines.push(`  SQL: ${q.query.split('\n').join('\n       ')}`);
  if (q.params) lines.push(q.params.length ? `  parameters (${q.params.length}): ${q.params.map((p, i) => `$${i + 1} = ${pgValue(p)}`).join(', ')}` : '  parameters: none');
  if (q.fingerprint !== undefined) lines.push(`  fingerprint: ${q.fingerprint}`);
  return [...lines, ...other(q, PG_REQUEST_KEYS, '  ')];
}

function pgResponse(s: PgRecordResponse, ctx: Ctx): string[] {
  const what = s.command ?? (s.error ? 'error' : 'no command tag');
  const lines = [`result: ${what}${s.rows !== undefined ? `, ${plural(s.rows, 'row')} returned` : ''}`
    + `${s.suspended ? ', portal suspended (more rows to fetch)' : ''}${s.empty ? ', empty query' : ''}${wire(s)}`];
  if (s.columns) lines.push(`  columns (${s.columns.length}): ${s.columns.join(', ')}`);
  if (s.preview) lines.push(`  first rows (${s.preview.length} shown):`, ...s.preview.map((row) => `    (${row.map(pgValue).join(', ')})`));
  else if (ctx.payloads.some((p) => p.startsWith('response.preview '))) {
    lines.push(`  first rows: ${ctx.bodiesAsked ? 'left out to fit the bound' : 'not included (include_bodies: true shows them)'}`);
  }
  if (s.error) lines.push(`  error: ${notice(s.error)}`);
  for (const n of s.notices ?? []) lines.push(`  notice: ${notice(n)}`);
  if (s.copy) lines.push(`  copy ${s.copy.direction}: ${plural(s.copy.bytes, 'byte')}, ${plural(s.copy.rows, 'row')}`);
  return [...lines, ...other(s, PG_RESPONSE_KEYS, '  ')];
}

function notice(n: PgNotice): string {
  return `${n.severity} ${n.code}: ${n.message}${n.detail ? `; detail: ${n.detail}` : ''}${n.hint ? `; hint: ${n.hint}` : ''}`
    + `${n.position !== undefined ? `; at character ${n.position}` : ''}`;
}

/** A parameter or column value as SQL would write it: 'text', 42, NULL; undecoded binary by its size. */
function pgValue(v: PgValue): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  if (typeof v !== 'object') return String(v);
  if ('bytes' in v) return `<bytea, ${plural(v.bytes, 'byte')}>`;
  return `<binary, ${plural(v.binary, 'byte')}, type oid ${v.oid}>`;
}

const MYSQL_REQUEST_KEYS = ['start', 'end', 'frames', 'size', 'command', 'query', 'fingerprint', 'statementId', 'params', 'database', 'user', 'ssl', 'part'];
const MYSQL_RESPONSE_KEYS = ['start', 'end', 'frames', 'size', 'columns', 'rows', 'preview', 'affectedRows', 'lastInsertId', 'warnings', 'error', 'paramCount', 'columnCount'];

/** A MySQL command (COM_QUERY, COM_STMT_EXECUTE, the login as COM_CONNECT): its SQL, statement and parameters. */
function mysqlRequest(q: MysqlRecordRequest): string[] {
  const about = [
    q.statementId !== undefined ? `statement ${q.statementId}` : '',
    q.part !== undefined ? `result ${q.part + 1} of a multi-result command` : '',
    q.user !== undefined ? `user ${q.user}` : '', q.database !== undefined ? `database ${q.database}` : '',
    q.ssl ? 'asked for TLS: what follows is encrypted' : '',
  ].filter(Boolean).join(', ');
  const lines = [`command: ${q.command}${about ? ` (${about})` : ''}${wire(q)}`];
  if (q.query !== undefined) lines.push(`  SQL: ${q.query.split('\n').join('\n       ')}`);
  if (q.params) lines.push(q.params.length ? `  parameters (${q.params.length}): ${q.params.map((p, i) => `?${i + 1} = ${mysqlValue(p)}`).join(', ')}` : '  parameters: none');
  if (q.fingerprint !== undefined) lines.push(`  fingerprint: ${q.fingerprint}`);
  return [...lines, ...other(q, MYSQL_REQUEST_KEYS, '  ')];
}

/** A MySQL answer: a result set, an OK with its counts, a prepared statement's shape, or an ERR. */
function mysqlResponse(s: MysqlRecordResponse, ctx: Ctx): string[] {
  const what = s.error ? 'error'
    : s.rows !== undefined ? `${plural(s.rows, 'row')} returned`
      : s.paramCount !== undefined || s.columnCount !== undefined ? `prepared: ${plural(s.paramCount ?? 0, 'parameter')}, ${plural(s.columnCount ?? 0, 'column')}`
        : s.affectedRows !== undefined ? `OK, ${plural(s.affectedRows, 'row')} affected${s.lastInsertId ? `, last insert id ${s.lastInsertId}` : ''}` : 'OK';
  const lines = [`result: ${what}${s.warnings ? `, ${plural(s.warnings, 'warning')}` : ''}${wire(s)}`];
  if (s.columns) lines.push(`  columns (${s.columns.length}): ${s.columns.join(', ')}`);
  if (s.preview) lines.push(`  first rows (${s.preview.length} shown):`, ...s.preview.map((row) => `    (${row.map(mysqlValue).join(', ')})`));
  else if (ctx.payloads.some((p) => p.startsWith('response.preview '))) {
    lines.push(`  first rows: ${ctx.bodiesAsked ? 'left out to fit the bound' : 'not included (include_bodies: true shows them)'}`);
  }
  if (s.error) lines.push(`  error: ${s.error.code}${s.error.sqlstate ? ` (SQLSTATE ${s.error.sqlstate})` : ''}: ${s.error.message}`);
  return [...lines, ...other(s, MYSQL_RESPONSE_KEYS, '  ')];
}

function mysqlValue(v: MysqlValue): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return `'${v.replace(/'/g, "''")}'`;
  if (typeof v === 'number') return String(v);
  return `<binary, ${plural(v.bytes, 'byte')}>`;
}

const COMMAND_KEYS = ['start', 'end', 'frames', 'size', 'command', 'args', 'argc', 'key', 'inline'];
const REPLY_KEYS = ['start', 'end', 'frames', 'size', 'type', 'value', 'length', 'error', 'channel', 'pattern', 'message'];

/**
 * A Redis command and its reply: the command as typed (arguments redacted as the record holds them),
 * the reply's type ("nil" is a cache miss) and bounded value, or the pushed pub/sub message.
 */
function commandLines(f: RedisFlow): string[] {
  const lines: string[] = [];
  const q = f.request, s = f.response;
  if (q) {
    const more = q.argc !== undefined ? ` (${q.argc} arguments, ${q.args.length} kept)` : '';
    lines.push(`command: ${[q.command, ...q.args].join(' ')}${more}${q.inline ? ', sent inline' : ''}${wire(q)}`);
    if (q.key !== undefined) lines.push(`  key: ${q.key}`);
    lines.push(...other(q, COMMAND_KEYS, '  '));
  } else if (!s || s.type !== 'push') lines.push('command: not seen');
  if (s) {
    const what = s.type === 'push'
      ? `push on ${s.channel ?? '?'}${s.pattern !== undefined ? ` (pattern ${s.pattern})` : ''}: ${JSON.stringify(s.message ?? null)}`
      : s.error !== undefined ? `error ${JSON.stringify(s.error)}`
        : `${s.type}${s.type === 'nil' ? ' (no value: a miss)' : ''}${s.length !== undefined ? `, ${plural(s.length, s.type === 'bulk' || s.type === 'verbatim' ? 'byte' : 'element')}` : ''}${s.value !== undefined ? `: ${s.value}` : ''}`;
    lines.push(`reply: ${what}${wire(s)}`, ...other(s, REPLY_KEYS, '  '));
  } else lines.push('reply: not seen');
  return lines;
}

/** Fields of `o` not in `known`, as `name: value` lines: what a newer record has is shown too. */
function other(o: object, known: string[], indent: string): string[] {
  return Object.entries(o).filter(([k]) => !known.includes(k)).map(([k, x]) => `${indent}${k}: ${scalar(x)}`);
}
