/**
 * MySQL comparison between tshark's MySQL dissector and tapwire's mysql records, per TCP connection.
 * tshark is run on the capture (`-T fields`, every MySQL PDU of a packet aggregated per field). Items
 * compared, aligned in order (LCS):
 *
 *   command  every client command: its name (COM_QUERY …) and, for COM_QUERY and COM_STMT_PREPARE,
 *            its SQL; a login as `LOGIN user` (tapwire: request.command, query; COM_CONNECT's user;
 *            a multi-statement query's records, one per statement, joined back with "; ")
 *   error    every ERR packet: `code message` (tapwire: response.error)
 *   columns  every result set's column count, and COM_STMT_PREPARE_OK's (tapwire: response.columns,
 *            columnCount)
 *
 * Row counts are not compared: tshark 4.0 gives no per-result-set row count (mysql.num_rows is
 * never set for text or binary result sets) and its row fields do not say which result they belong to.
 */
import { execFileSync } from 'node:child_process';
import type { FlowRecord, MysqlFlow } from '../../src/flows/record.js';
import { connKey } from './http1-compare.js';
import { alignIdx } from './redis-compare.js';

export type MysqlItemKind = 'command' | 'error' | 'columns';

/** enum_server_command (MySQL include/my_command.h), as tshark writes mysql.command: a number. */
const COMMANDS = ['COM_SLEEP', 'COM_QUIT', 'COM_INIT_DB', 'COM_QUERY', 'COM_FIELD_LIST', 'COM_CREATE_DB', 'COM_DROP_DB', 'COM_REFRESH',
  'COM_SHUTDOWN', 'COM_STATISTICS', 'COM_PROCESS_INFO', 'COM_CONNECT', 'COM_PROCESS_KILL', 'COM_DEBUG', 'COM_PING', 'COM_TIME',
  'COM_DELAYED_INSERT', 'COM_CHANGE_USER', 'COM_BINLOG_DUMP', 'COM_TABLE_DUMP', 'COM_CONNECT_OUT', 'COM_REGISTER_SLAVE',
  'COM_STMT_PREPARE', 'COM_STMT_EXECUTE', 'COM_STMT_SEND_LONG_DATA', 'COM_STMT_CLOSE', 'COM_STMT_RESET', 'COM_SET_OPTION',
  'COM_STMT_FETCH', 'COM_DAEMON', 'COM_BINLOG_DUMP_GTID', 'COM_RESET_CONNECTION'];
const WITH_SQL = new Set(['COM_QUERY', 'COM_STMT_PREPARE']);
/** tapwire cuts error messages at 256 characters (flow-record.md). */
const MESSAGE_CHARS = 256;

export interface MysqlItem {
  kind: MysqlItemKind;
  item: string;
  frame: number;
  conn: string;
  /** tshark marked the packet malformed. */
  malformed?: boolean;
}

export interface MysqlDeviation {
  kind: MysqlItemKind;
  side: 'missing' | 'extra';
  what: string;
  conn: string;
  frames: [number, number];
  malformed?: boolean;
  record?: MysqlFlow;
}

const SEP = '\u0001';
const FIELDS = ['frame.number', 'ip.src', 'ipv6.src', 'ip.dst', 'ipv6.dst', 'tcp.srcport', 'tcp.dstport', 'mysql.command', 'mysql.query',
  'mysql.login_request', 'mysql.user', 'mysql.error_code', 'mysql.error.message', 'mysql.num_fields', '_ws.malformed', '_ws.col.Info'];

/** tshark's items of a capture, in packet order (`serverPorts`: the MySQL servers' TCP ports). */
export function tsharkMysql(file: string, serverPorts: readonly number[]): MysqlItem[] {
  const decode = serverPorts.flatMap((p) => ['-d', `tcp.port==${p},mysql`]);
  const out = execFileSync('tshark', ['-n', '-2', '-o', 'tcp.reassemble_out_of_order:TRUE', ...decode, '-r', file, '-Y', 'mysql',
    '-T', 'fields', '-E', `aggregator=${SEP}`, '-E', 'occurrence=a', ...FIELDS.flatMap((f) => ['-e', f])],
  { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  const items: MysqlItem[] = [];
  for (const line of out.split('\n')) {
    if (!line) continue;
    const c = line.split('\t');
    const f = (name: string) => c[FIELDS.indexOf(name)] ?? '';
    const list = (name: string) => (f(name) === '' ? [] : f(name).split(SEP).map(unescape));
    const frame = Number(f('frame.number'));
    const src = f('ip.src') || f('ipv6.src'), dst = f('ip.dst') || f('ipv6.dst');
    const sport = Number(f('tcp.srcport')), dport = Number(f('tcp.dstport'));
    const conn = connKey({ ip: src, port: sport }, { ip: dst, port: dport });
    const malformed = f('_ws.malformed') !== '' || /Malformed/.test(f('_ws.col.Info'));
    const push = (kind: MysqlItemKind, item: string) => items.push({ kind, item, frame, conn, malformed });
    if (!serverPorts.includes(sport)) {
      const queries = list('mysql.query');
      let q = 0;
      for (const code of list('mysql.command')) {
        const name = COMMANDS[Number(code)] ?? `COM_${code}`;
        push('command', WITH_SQL.has(name) ? `${name} ${queries[q++] ?? ''}` : name);
      }
      if (f('mysql.login_request') !== '' || (list('mysql.command').length === 0 && f('mysql.user') !== '')) push('command', `LOGIN ${list('mysql.user')[0] ?? ''}`);
    } else {
      const msgs = list('mysql.error.message');
      list('mysql.error_code').forEach((code, i) => push('error', `${code} ${(msgs[i] ?? '').slice(0, MESSAGE_CHARS)}`));
      for (const n of list('mysql.num_fields')) push('columns', `columns:${n}`);
    }
  }
  return items;
}

/** tshark -T fields escapes these in strings. */
function unescape(s: string): string {
  return s.replace(/\\([tnr\\])/g, (_m, x: string) => (x === 't' ? '\t' : x === 'n' ? '\n' : x === 'r' ? '\r' : '\\'));
}

/** tapwire's items per connection: commands in the order sent, answers in the order they came. */
export function tapwireMysql(records: readonly FlowRecord[]): (MysqlItem & { record: MysqlFlow; frames: [number, number] })[] {
  const mysql = records.filter((r): r is MysqlFlow => r.protocol === 'mysql');
  const out: (MysqlItem & { record: MysqlFlow; frames: [number, number] })[] = [];
  const parts = new Map<string, MysqlFlow[]>();
  for (const r of mysql) {
    const q = r.request;
    if (!q) continue;
    const key = `${connKey(r.src, r.dst)}@${q.frames![0]}@${q.command}`;
    (parts.get(key) ?? parts.set(key, []).get(key)!).push(r);
  }
  for (const group of parts.values()) {
    const r = group[0]!, q = r.request!;
    const conn = connKey(r.src, r.dst);
    // A multi-statement COM_QUERY is one record per statement: the wire had their SQL in one command.
    const sql = group.map((x) => x.request!.query ?? '').join('; ');
    const item = q.command === 'COM_CONNECT' ? `LOGIN ${q.user ?? ''}` : WITH_SQL.has(q.command) ? `${q.command} ${sql}` : q.command;
    out.push({ kind: 'command', item, frame: q.frames![0], conn, record: r, frames: q.frames! });
  }
  for (const r of mysql) {
    const s = r.response;
    if (!s) continue;
    const conn = connKey(r.src, r.dst);
    const frames = s.frames!;
    if (s.error) out.push({ kind: 'error', item: `${s.error.code} ${s.error.message.slice(0, MESSAGE_CHARS)}`, frame: frames[0], conn, record: r, frames });
    if (s.columns) out.push({ kind: 'columns', item: `columns:${s.columns.length}`, frame: frames[0], conn, record: r, frames });
    else if (s.columnCount !== undefined) out.push({ kind: 'columns', item: `columns:${s.columnCount}`, frame: frames[0], conn, record: r, frames });
  }
  return out.sort((a, b) => a.frame - b.frame);
}

/** Compares tshark's and tapwire's items per connection and kind: counts and every deviation. */
export function compareMysql(tshark: readonly MysqlItem[], records: readonly FlowRecord[]): {
  items: number; matched: number; byKind: Record<MysqlItemKind, [number, number]>; deviations: MysqlDeviation[]; connections: number;
} {
  const w = tapwireMysql(records);
  const byKind: Record<MysqlItemKind, [number, number]> = { command: [0, 0], error: [0, 0], columns: [0, 0] };
  const deviations: MysqlDeviation[] = [];
  const conns = [...new Set([...tshark.map((x) => x.conn), ...w.map((x) => x.conn)])];
  for (const conn of conns) {
    for (const kind of ['command', 'error', 'columns'] as const) {
      const a = tshark.filter((x) => x.conn === conn && x.kind === kind), b = w.filter((x) => x.conn === conn && x.kind === kind);
      const r = alignIdx(a.map((x) => x.item), b.map((x) => x.item));
      byKind[kind][0] += a.length;
      byKind[kind][1] += r.matched;
      for (const i of r.missing) deviations.push({ kind, side: 'missing', what: a[i]!.item, conn, frames: [a[i]!.frame, a[i]!.frame], malformed: a[i]!.malformed });
      for (const j of r.extra) deviations.push({ kind, side: 'extra', what: b[j]!.item, conn, frames: b[j]!.frames, record: b[j]!.record });
    }
  }
  return { items: byKind.command[0] + byKind.error[0] + byKind.columns[0], matched: byKind.command[1] + byKind.error[1] + byKind.columns[1], byKind, deviations, connections: conns.length };
}
