import type { PgExchange } from './types.js';

/** Command tags of statements that change the transaction status (BEGIN/START, COMMIT/END, ROLLBACK/ABORT, savepoints, two-phase). */
const CONTROL = /^(BEGIN|START TRANSACTION|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|PREPARE TRANSACTION|COMMIT PREPARED|ROLLBACK PREPARED)\b/;

/**
 * `postgres.transaction` after server bytes were lost. A record carries the status the last
 * ReadyForQuery before its statement reported (protocol-message-formats.html, ReadyForQuery: idle,
 * in a transaction block, or in a failed one). A hole may have held a ReadyForQuery, so the
 * status before the next batch is unknown; the records of that batch are held until its own
 * ReadyForQuery. The status changes only by a transaction-control statement or an error, so it
 * is told from the batch's statements and the status after it (statusBefore); when they cannot
 * tell, it stays unknown and is omitted, never guessed.
 */
export class StatusAfterLoss {
  private held: PgExchange[] | undefined;
  private unknown = false;

  /** Server bytes were lost: the next batch's status before it is unknown. */
  lost(): void {
    this.unknown = true;
  }

  /** A batch's answer begins; true when its records are held (the session then forgets the status). */
  begin(): boolean {
    if (!this.unknown) return false;
    this.unknown = false;
    this.held = [];
    return true;
  }

  /** Holds `tx` if this batch's records are held. */
  hold(tx: PgExchange): boolean {
    if (!this.held) return false;
    this.held.push(tx);
    return true;
  }

  /** The batch ended with a ReadyForQuery reporting `after` (undefined: it did not end whole): the held records go out. */
  release(after: PgExchange['postgres']['session']['transaction'], emit: (tx: PgExchange) => void): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    const before = statusBefore(held.filter((x) => x.postgres.notification === undefined), after);
    for (const x of held) {
      if (before) x.postgres.session = { ...x.postgres.session, transaction: before };
      emit(x);
    }
  }
}

type Status = PgExchange['postgres']['session']['transaction'];

/**
 * The status before a batch, from its statements in order and the status after it: the first
 * statement that could change it decides (BEGIN without a warning began in an idle session, a
 * COMMIT tag without one ended a transaction block; PostgreSQL docs, sql-begin.html,
 * sql-commit.html: each warns when there was nothing to begin or end); with none, it is the
 * status after. A statement without its answer, or with an error, leaves it unknown.
 */
function statusBefore(records: PgExchange[], after: Status): Status {
  for (const x of records) {
    const r = x.postgres.response;
    if (!r || r.error || r.notices?.length) return undefined;
    const tag = r.command ?? '';
    if (!CONTROL.test(tag)) continue;
    if (/^(BEGIN|START TRANSACTION)$/.test(tag)) return 'idle';
    if (tag === 'COMMIT') return 'transaction';
    return undefined;
  }
  return after;
}
