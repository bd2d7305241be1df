/*
 * The server's answer to one command, packet by packet (PAGE_PROTOCOL.html: "Generic Response
 * Packets", page_protocol_com_query_response, page_protocol_com_stmt_prepare_response,
 * page_protocol_com_stmt_execute_response, COM_FIELD_LIST): an OK or ERR alone, or a result set
 * (column count, definitions, an EOF without CLIENT_DEPRECATE_EOF, rows, an EOF or OK at the end),
 * or COM_STMT_PREPARE_OK and its definitions. Which grammar applies is the command's: the session
 * picks the command (through the shared pairing) at the answer's first packet and feeds the rest.
 */
import {
  CAP, COMMAND, HEADER, STATUS, type Column, isEnd, isEof, parseColumn, parseEof, parseErr, parseOk, parsePrepareOk,
  parseTextRow, parseBinaryRow, type PrepareOk,
} from './messages.js';
import type { MysqlSpan, MysqlTransaction } from './types.js';
import type { MysqlValue } from './values.js';
import { type Packet, parse } from './wire.js';

export type Response = NonNullable<MysqlTransaction['response']>;

/** Characters kept of a value or an error message. */
export const VALUE_LIMIT = 256;
/** Column definitions kept per result set. */
const MAX_COLUMNS = 4096;

/** Where the answer being read is in its grammar. */
type Step = 'first' | 'columns' | 'columnsEof' | 'rows' | 'defs' | 'list' | 'one';

/** One result of an answer is whole: what it said, and whether another result follows (SERVER_MORE_RESULTS_EXISTS). */
export interface Result {
  r: Partial<Response>;
  more: boolean;
  incomplete?: string;
}

/** What the reader asks of its session. */
export interface AnswerEnv {
  /** Capabilities both sides agreed on at the login; undefined when the login was not seen. */
  caps(): number | undefined;
  /** MariaDB's extended column metadata was agreed at the login. */
  extended(): boolean;
  readonly previewRows: number;
  violation(code: string, reason: string, offset: number): void;
  /** A COM_STMT_PREPARE_OK was read: the statement's id and counts. */
  prepared(ok: PrepareOk): void;
}

/** The answer being read: its grammar step, what it collected, and where it lies in the capture. */
export class AnswerReader {
  private step: Step = 'first';
  /** Column definitions (or prepare definitions) still to come. */
  private left = 0;
  private cols: Column[] = [];
  private binary = false;
  private rows = 0;
  private preview: MysqlValue[][] = [];
  private prepareOk: PrepareOk | undefined;
  /** The packets read so far of this result (undefined before its first). */
  span: MysqlSpan | undefined;

  constructor(private readonly env: AnswerEnv) {}

  /** Ready for the next result (of the same answer, or the next command's). */
  reset(): void {
    this.step = 'first';
    this.left = 0;
    this.cols = [];
    this.binary = false;
    this.rows = 0;
    this.preview = [];
    this.prepareOk = undefined;
    this.span = undefined;
  }

  private get deprecateEof(): boolean {
    const c = this.env.caps();
    return c !== undefined && (c & CAP.DEPRECATE_EOF) !== 0;
  }

  /** One server packet of the answer to a command `code` (-1: a command not seen). The result once whole. */
  read(code: number, p: Packet): Result | undefined {
    const b = p.payload;
    const h = b[0];
    const env = this.env;
    switch (this.step) {
      case 'first': {
        if (h === HEADER.ERR) return this.out({ error: parseErr(b, VALUE_LIMIT) });
        if (h === HEADER.LOCAL_INFILE && p.length > 1 && code === COMMAND.COM_QUERY) return undefined; // file contents, then OK/ERR
        if (code === COMMAND.COM_STATISTICS) return this.out({});
        // COM_CHANGE_USER is a login again: an AuthSwitchRequest (0xfe) or AuthMoreData (0x01) before the OK or ERR.
        if (code === COMMAND.COM_CHANGE_USER && h !== HEADER.OK) return undefined;
        if (code === COMMAND.COM_FIELD_LIST) {
          this.step = 'list';
          return this.read(code, p);
        }
        if (h === HEADER.OK && code === COMMAND.COM_STMT_PREPARE) return this.prepared(b);
        if (h === HEADER.OK || h === HEADER.EOF) {
          // 0xfe here: COM_SET_OPTION's EOF, or an OK with the 0xfe header.
          const ok = isEof(p) ? undefined : parseOk(b);
          const eof = isEof(p) ? parseEof(b) : undefined;
          const r: Partial<Response> = {};
          if (ok) {
            r.affectedRows = ok.affectedRows;
            if (ok.lastInsertId) r.lastInsertId = ok.lastInsertId;
          }
          const warnings = ok?.warnings ?? eof?.warnings;
          if (warnings) r.warnings = warnings;
          return this.out(r, (((ok ?? eof)?.status ?? 0) & STATUS.MORE_RESULTS_EXISTS) !== 0);
        }
        const n = parse(b, (c) => c.lenenc());
        if (n === null || n === undefined || n === 0) {
          env.violation('mysql.bad_column_count', `result set header 0x${(h ?? 0).toString(16)} is not a column count`, p.offset);
          return this.out({}, false, 'malformed');
        }
        this.step = 'columns';
        this.left = n;
        this.binary = code === COMMAND.COM_STMT_EXECUTE;
        return undefined;
      }
      case 'columns': {
        const col = parseColumn(b, env.extended());
        if (!col) env.violation('mysql.bad_column', `column definition of ${p.length} bytes is too short`, p.offset);
        if (this.cols.length < MAX_COLUMNS) this.cols.push(col ?? { name: '?', type: 253, flags: 0, charset: 33 });
        if (--this.left === 0) this.step = env.caps() === undefined || !this.deprecateEof ? 'columnsEof' : 'rows';
        return undefined;
      }
      case 'columnsEof':
        this.step = 'rows';
        // Without CLIENT_DEPRECATE_EOF an EOF ends the definitions; when the login was not seen, an EOF here is that one.
        if (isEof(p)) return undefined;
        if (env.caps() !== undefined) env.violation('mysql.missing_eof', 'column definitions not followed by EOF', p.offset);
        return this.read(code, p);
      case 'rows': {
        if (h === HEADER.ERR) return this.out({ ...this.result(), error: parseErr(b, VALUE_LIMIT) });
        if (isEnd(p)) {
          const end = isEof(p) ? parseEof(b) : parseOk(b);
          const r: Partial<Response> = this.result();
          if (end?.warnings) r.warnings = end.warnings;
          return this.out(r, ((end?.status ?? 0) & STATUS.MORE_RESULTS_EXISTS) !== 0);
        }
        this.rows++;
        if (this.preview.length < env.previewRows && p.length === b.length) {
          const row = this.binary ? parseBinaryRow(b, this.cols, VALUE_LIMIT) : parseTextRow(b, this.cols, VALUE_LIMIT);
          if (row) this.preview.push(row);
          else env.violation('mysql.bad_row', `row of ${p.length} bytes does not hold ${this.cols.length} values`, p.offset);
        }
        return undefined;
      }
      case 'defs':
        // COM_STMT_PREPARE_OK's parameter and column definitions (and their EOFs without DEPRECATE_EOF).
        if (isEof(p) && env.caps() === undefined) return undefined;
        return --this.left <= 0 ? this.out({}) : undefined;
      case 'list':
        if (h === HEADER.ERR) return this.out({ error: parseErr(b, VALUE_LIMIT) });
        if (isEnd(p)) return this.out({ columns: this.cols.map((c) => c.name) });
        if (this.cols.length < MAX_COLUMNS) {
          const col = parseColumn(b, env.extended());
          if (col) this.cols.push(col);
        }
        return undefined;
      case 'one':
        return this.out({});
    }
  }

  private prepared(b: Buffer): Result | undefined {
    const ok = parsePrepareOk(b);
    if (!ok) return this.out({}, false, 'malformed');
    this.prepareOk = ok;
    this.env.prepared(ok);
    const caps = this.env.caps();
    const eofs = caps !== undefined && !this.deprecateEof ? (ok.params > 0 ? 1 : 0) + (ok.columns > 0 ? 1 : 0) : 0;
    this.left = ok.params + ok.columns + eofs;
    if (this.left === 0) return this.out({});
    this.step = 'defs';
    return undefined;
  }

  private result(): Partial<Response> {
    return { columns: this.cols.map((c) => c.name), rows: this.rows, ...(this.preview.length ? { preview: this.preview } : {}) };
  }

  /** What was read of an answer cut short. */
  partial(): Partial<Response> {
    return this.cols.length ? this.result() : {};
  }

  private out(r: Partial<Response>, more = false, incomplete?: string): Result {
    if (this.prepareOk) {
      r.paramCount = this.prepareOk.params;
      r.columnCount = this.prepareOk.columns;
    }
    return incomplete ? { r, more, incomplete } : { r, more };
  }
}
