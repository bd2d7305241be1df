/*
 * Which client batch a server batch answers, on one PostgreSQL connection.
 *
 * The protocol's unit of answer is the batch: a simple Query, or extended-protocol messages up to
 * and including Sync (or a FunctionCall). The backend answers each with messages that end in
 * exactly one ReadyForQuery, in the order the batches were sent, also when a client pipelines
 * (PostgreSQL docs, protocol-flow.html: "Simple Query", "Extended Query", "Pipelining"). So while
 * nothing was lost ("certain") the n-th ReadyForQuery closes the n-th batch.
 *
 * After a loss the count is broken: lost client bytes may have held batches nobody parsed, lost
 * server bytes the answers to some. A server batch then pairs only when TCP acknowledgements leave
 * exactly one candidate (the rules of ../pairing.ts, restated for batches): a client batch the
 * server had begun to receive (its offset < the answer's ACK, RFC 9293 §3.4) that was sent before
 * the client had acknowledged the answer's first byte (its ACK <= the answer's offset). A client
 * that waits for each ReadyForQuery before it sends the next batch (lockstep, as libpq and `pg` do
 * outside pipeline mode) gives a floor: an answer that begins at or after what batch Y's packet
 * acknowledged answers Y or a later one, and one that begins exactly there is Y's. Once the client
 * is seen sending a batch before the previous one's ReadyForQuery arrived, the floor is off.
 * Otherwise the answer is reported alone (`no-request-seen`, `request-ambiguous-after-gap`) and
 * batches whose answers were lost say `response-lost-in-gap`. Nothing here reads a message.
 */

/** Why a half is reported alone: the codes HTTP/1 uses (../pairing.ts UNPAIRED), documented in docs/flow-record.md. */
export const LOST_RESPONSE = 'response-lost-in-gap';
export const NO_REQUEST = 'no-request-seen';
export const AMBIGUOUS_REQUEST = 'request-ambiguous-after-gap';
export const AMBIGUOUS_RESPONSE = 'response-ambiguous-after-gap';

/** One client batch: where it starts, what its first packet acknowledged, and its messages' ops. */
export interface Unit<O> {
  off: number;
  ack: number;
  ops: O[];
  /** Its Sync (or Query, FunctionCall) was read, or lost: no more ops join it. */
  closed: boolean;
  /** A later answer that could not be told apart from another's may have been this batch's. */
  maybe?: boolean;
}

/** Client bytes nobody parsed (lost, or skipped while resynchronising): they may hold batches. */
interface Stretch {
  off: number;
  /** The ACK of the last client packet before them: a batch in them carries at least this. */
  ackMin: number;
  /** The ACK of the first client packet after them (-1: none yet). */
  ackMax: number;
  /** Server offset just past the answer to the last batch before them (Infinity: unknown). */
  after: number;
  /** Server offset of the first answer whose packet acknowledged them (-1: none yet). */
  seenBy: number;
}

/** Stretches of unparsed client bytes tracked per connection (each is a few numbers). */
const MAX_STRETCHES = 64;

export interface Pick<O> {
  unit?: Unit<O>;
  /** Why the answer has no batch (when `unit` is undefined and pairing is not certain). */
  reason?: string;
}

export class Units<O> {
  readonly list: Unit<O>[] = [];
  private stretches: Stretch[] = [];
  /** In-order pairing holds: nothing lost since the last anchor. */
  certain: boolean;
  private overlapped = false;
  /** Two batches were seen sent in one flight (the same ACK): the client pipelines batches. */
  private multiBatch = false;
  /** Server offset just past the last ReadyForQuery that closed a known batch (-1: none). */
  private answeredEnd = -1;
  private anchored: boolean;
  /** More stretches of unparsed client bytes than are tracked: nothing pairs until the connection settles. */
  private confused = false;
  private clientEnd = 0;
  private clientAck = -1;

  constructor(whole: boolean) {
    this.certain = whole;
    this.anchored = whole;
  }

  /** Client bytes (or a hole) reached `end`; the packet acknowledged `ack` (-1: none). */
  client(end: number, ack: number): void {
    if (end > this.clientEnd) this.clientEnd = end;
    if (ack >= 0) this.clientAck = ack;
  }

  /** The batch new frontend ops join: the open one, or a new one starting at `off`. */
  open(off: number, ack: number): Unit<O> {
    const last = this.list[this.list.length - 1];
    if (last && !last.closed) return last;
    const u: Unit<O> = { off, ack, ops: [], closed: false };
    if (last && ack >= 0 && last.ack === ack) this.multiBatch = true;
    for (const s of this.stretches) if (s.ackMax < 0 && off > s.off) s.ackMax = ack;
    this.list.push(u);
    return u;
  }

  /** Client bytes from `off` on were lost: the open batch lost its tail, and batches may hide there. */
  lostClient(off: number): void {
    const last = this.list[this.list.length - 1];
    if (last) last.closed = true;
    if (this.stretches.length > 0 && this.stretches[this.stretches.length - 1]!.ackMax < 0) return; // the same episode
    const known = this.anchored && this.stretches.length === 0 && !this.list.some((u) => u.off < off);
    if (this.stretches.length >= MAX_STRETCHES) {
      this.confused = true; // forgetting one could leave a wrong answer the only candidate
      return;
    }
    this.stretches.push({ off, ackMin: Math.max(0, this.clientAck), ackMax: -1, after: known ? this.answeredEnd : Infinity, seenBy: -1 });
  }

  /**
   * Server bytes from `off` on were lost at a batch boundary: in order, they began the answer to
   * the oldest batch waiting, unless client bytes nobody parsed come first or that batch was sent
   * after the client had received the lost bytes. Returns it, or undefined.
   */
  lostServer(off: number): Unit<O> | undefined {
    const was = this.certain;
    this.certain = false;
    const u = this.list[0];
    if (!was || !u) return undefined;
    if (this.stretches.length > 0 && this.stretches[0]!.off < u.off) return undefined;
    if (u.ack > off) return undefined;
    return u;
  }

  /**
   * Which batch the server batch starting at `respOff` answers (its packet acknowledged
   * `respAck`). `proven`: that offset is known to begin a batch's answer (a ReadyForQuery came just
   * before). Batches it proves answered or lost are handed to `retire` with their reason.
   */
  pick(respOff: number, respAck: number, proven: boolean, retire: (u: Unit<O>, reason: string) => void): Pick<O> {
    if (this.certain) {
      const u = this.list[0];
      const s = this.stretches[0];
      if (u && (!s || u.off < s.off)) return { unit: u };
      // Nothing waits, yet the server acknowledged client bytes the capture has not shown (they
      // were lost, and the hole is not declared yet): the answer is theirs.
      if (!u && !s && respAck <= this.clientEnd) return {};
      if (!u && !s) {
        this.certain = false;
        return this.orphan(respAck, NO_REQUEST);
      }
      this.certain = false; // in-order pairing reached client bytes nobody parsed
    }
    if (this.confused) return this.orphan(respAck, AMBIGUOUS_REQUEST);
    for (const s of this.stretches) if (s.seenBy < 0 && respAck > s.off) s.seenBy = respOff;
    // Lockstep floor: the first batch of the last flight sent before the client had this answer.
    let floor: Unit<O> | undefined;
    if (!this.overlapped) {
      for (const u of this.list) if (u.ack >= 0 && u.ack <= respOff && (!floor || u.ack > floor.ack)) floor = u;
    }
    // Lockstep and the first server byte after what the floor acknowledged: a batch's answer starts.
    if (!proven && !(floor && respOff === floor.ack)) return this.orphan(respAck, NO_REQUEST);
    // Client bytes nobody parsed before the floor were answered before it only if they went out in
    // an earlier flight: proven by server bytes the floor acknowledged that answer them (`after`),
    // an earlier answer that acknowledged them, an ACK of theirs below the floor's, or a client
    // never seen sending two batches in one flight.
    const passed = (s: Stretch) => floor !== undefined && s.off < floor.off && s.ackMin < floor.ack
      && (s.after < floor.ack || (s.seenBy >= 0 && s.seenBy < floor.ack) || (s.ackMax >= 0 && s.ackMax < floor.ack) || !this.multiBatch);
    const could = (off: number, ack: number) => off < respAck && ack <= respOff;
    const units = this.list.filter((u) => (!floor || u.off >= floor.off) && could(u.off, u.ack));
    const stretches = this.stretches.filter((s) => !passed(s) && could(s.off, s.ackMin));
    const unseen = respAck > this.clientEnd && this.clientAck <= respOff ? 1 : 0;
    if (floor) {
      this.retireBefore(floor.off, LOST_RESPONSE, retire);
      this.stretches = this.stretches.filter((s) => !passed(s));
    }
    const count = units.length + stretches.length + unseen;
    if (count === 1 && units.length === 1) return this.pair(units[0]!, retire);
    if (count === 1 && stretches.length === 1) {
      // It answers a batch nobody could parse.
      this.stretches.splice(this.stretches.indexOf(stretches[0]!), 1);
      return this.orphan(respAck, NO_REQUEST);
    }
    if (count > 1 && floor && respOff === floor.ack && units.length === count && units[0] === floor) return this.pair(floor, retire);
    if (count > 1) {
      for (const u of units) u.maybe = true;
      return this.orphan(respAck, AMBIGUOUS_REQUEST);
    }
    return this.orphan(respAck, NO_REQUEST);
  }

  /** The batch `u` was answered, its ReadyForQuery ending at server offset `end`. */
  answered(u: Unit<O> | undefined, end: number): void {
    if (u) {
      const i = this.list.indexOf(u);
      if (i >= 0) this.list.splice(i, 1);
      for (const s of this.stretches) if (s.off > u.off) s.after = end;
      this.answeredEnd = end;
      // The next batch went out before this answer had arrived: the client overlaps batches.
      const next = this.list.find((x) => x.off > u.off);
      if (next && next.ack >= 0 && next.ack !== u.ack && next.ack < end) this.overlapped = true;
    }
  }

  /**
   * At a ReadyForQuery whose packet acknowledged `zAck`: pairing in order is safe again when
   * nothing unparsed or lost is outstanding (or, too much lost to track, a lockstep client's
   * every byte was received by the server before it said it was ready, and nothing waits).
   */
  settle(inSync: boolean, unique: boolean, zAck: number): void {
    if (this.certain || !inSync) return;
    if (this.confused && this.list.length === 0 && !this.overlapped && zAck >= this.clientEnd) {
      this.confused = false;
      this.stretches = [];
    }
    if (this.confused || this.stretches.length > 0) return;
    if (unique || this.list.length === 0) {
      this.certain = true;
      this.anchored = true;
    }
  }

  /**
   * Whether server bytes whose packet acknowledged `respAck` can still answer `u`: the server had
   * received no client byte after `u` that the capture did not show, nor any later batch.
   */
  stillAnswering(u: Unit<O>, respAck: number): boolean {
    if (respAck < 0 || respAck > this.clientEnd) return false;
    if (this.list.some((x) => x.off > u.off && x.off < respAck)) return false;
    return !this.stretches.some((s) => s.off > u.off && s.off < respAck);
  }

  /** `u` will not be answered (its answer was cut by a hole): out of the list. */
  drop(u: Unit<O>): void {
    const i = this.list.indexOf(u);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** Every batch still waiting, out of the list (the connection ended). */
  drain(): Unit<O>[] {
    return this.list.splice(0);
  }

  private pair(u: Unit<O>, retire: (u: Unit<O>, reason: string) => void): Pick<O> {
    this.retireBefore(u.off, LOST_RESPONSE, retire);
    this.stretches = this.stretches.filter((s) => s.off > u.off);
    return { unit: u };
  }

  private retireBefore(off: number, reason: string, retire: (u: Unit<O>, reason: string) => void): void {
    while (this.list.length > 0 && this.list[0]!.off < off) {
      const u = this.list.shift()!;
      retire(u, u.maybe ? AMBIGUOUS_RESPONSE : reason);
    }
  }

  /** An answer paired with no batch: where answers to earlier batches end is unknown from here. */
  private orphan(respAck: number, reason: string): Pick<O> {
    for (const s of this.stretches) if (s.off < respAck) s.after = Infinity;
    return { reason };
  }
}
