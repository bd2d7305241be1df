// One mutated run of one capture, judged against the clean run.
//
// Touched (a lost segment carried bytes of the transaction):
//   HTTP/1.x, PostgreSQL: a dropped packet of the client→server direction whose frame number lies in
//     the clean record's request.frames [first, last], or one of the server→client direction in
//     response.frames. A message's bytes are contiguous in its direction, so every data packet of that
//     direction between its first and last frame carries some of them (a packet that ends one message
//     and starts the next touches both).
//   HTTP/2, gRPC: a dropped packet that carried (part of) a frame of the record's stream, from the
//     clean capture's frame map (capture.mjs http2FrameMap). Frames of other streams in the same
//     packet do not touch it.
// Untouched and exact: the mutated run has a record whose identity — everything but times and the
//   record id, so connection, frames, method, path, status, headers, body preview, sizes, gRPC
//   messages, PostgreSQL statement, parameters and rows, incomplete flags — equals the clean
//   record's (each mutated record stands for one clean record at most, records.mjs take). When
//   there is none, records.mjs match finds the record that stands for it (same HTTP/2 stream, or
//   overlapping frames) to explain the difference.
// Touched and still exact: a dropped packet carried only framing that did not change the record
//   (counted apart, not a defect).
// Touched and marked: its record in the mutated run says incomplete with an incompleteReason. A
//   touched transaction with no record at all is "vanished" when nothing that could identify it
//   survived (allDropped below), and counts as unmarked otherwise.
// Mismatched pair: a record of the mutated run whose halves carry different ids (records.mjs).
// HPACK: an untouched HTTP/2 or gRPC record that is not exact is "explained by HPACK" when an
//   earlier dropped packet of the same connection carried (part of) a header block: the decoder
//   cannot know what that block did to the dynamic table. hpackInsert counts those where a lost
//   block did insert into the table (the decoder's table really differs from the peer's); the rest
//   lost only blocks without inserts.
// notExactUnmarked: untouched, not exact, and its record does not say incomplete (silently wrong).
import { decodePackets, indexRecords, take, match, mismatch, recordKey, differences } from './records.mjs';

const inRange = (f, r) => r && f >= r[0] && f <= r[1];
const isH2 = (r) => r.protocol === 'http2' || r.protocol === 'grpc';

/** An empty tally for one protocol. */
export function tally() {
  return {
    transactions: 0, untouched: 0, exact: 0, notExact: 0, notExactUnmarked: 0, missing: 0, hpack: 0, hpackInsert: 0,
    touched: 0, touchedExact: 0, marked: 0, unmarked: 0, vanished: 0, headersPartial: 0, mismatched: 0, spurious: 0,
    reasons: {}, notExactReasons: {},
  };
}

export function addTally(into, t) {
  for (const [k, v] of Object.entries(t)) {
    if (k === 'reasons' || k === 'notExactReasons') for (const [r, n] of Object.entries(v)) into[k][r] = (into[k][r] ?? 0) + n;
    else into[k] += v;
  }
  return into;
}

/**
 * Judge one mutation. clean: { entries, records, frameMap, protos }. mutation: { packets, dropped }
 * (dropped: [] for reordering). Returns { byProtocol: {proto: tally}, cases: [...] } where cases are
 * the records worth a dump: mismatched pairs, untouched-not-exact, touched-unmarked.
 */
export function evaluate(clean, mutation) {
  const records = decodePackets(mutation.packets, clean.protos);
  const index = indexRecords(records);
  const droppedByKey = new Map();
  for (const e of mutation.dropped) {
    if (!droppedByKey.has(e.tcp.key)) droppedByKey.set(e.tcp.key, []);
    droppedByKey.get(e.tcp.key).push(e);
  }
  const byProtocol = {};
  const cases = [];
  const T = (p) => (byProtocol[p] ??= tally());

  for (const c of clean.records) {
    const t = T(c.protocol);
    t.transactions++;
    const k = recordKey(c);
    const client = `${c.src.ip}:${c.src.port}`;
    const drops = droppedByKey.get(k) ?? [];
    let touched = false;
    if (isH2(c)) {
      touched = drops.some((d) => clean.frameMap.get(d.packet.frame)?.streams.has(c.streamId));
    } else {
      touched = drops.some((d) => (d.tcp.from === client ? inRange(d.packet.frame, c.request?.frames) : inRange(d.packet.frame, c.response?.frames)));
    }
    const same = take(index, c);
    if (same) {
      if (touched) { t.touched++; t.touchedExact++; } else { t.untouched++; t.exact++; }
      continue;
    }
    const l = match(index, c);
    if (l?.headersPartial) t.headersPartial++;
    if (!touched) {
      t.untouched++;
      t.notExact++;
      if (!l) t.missing++;
      if (l && !l.incomplete) t.notExactUnmarked++;
      const why = l ? (l.incomplete ? l.incompleteReason ?? 'incomplete' : 'unmarked') : 'no record';
      t.notExactReasons[why] = (t.notExactReasons[why] ?? 0) + 1;
      let hpack = '';
      if (isH2(c)) {
        const last = Math.max(c.request?.frames?.[1] ?? 0, c.response?.frames?.[1] ?? 0);
        const lost = drops.filter((d) => d.packet.frame < last && clean.frameMap.get(d.packet.frame)?.headerBlock);
        if (lost.some((d) => clean.frameMap.get(d.packet.frame).inserts > 0)) { hpack = 'insert'; t.hpack++; t.hpackInsert++; }
        else if (lost.length) { hpack = 'block'; t.hpack++; }
      } else if (c.protocol === 'postgres' && l) {
        // PostgreSQL session state a lost segment took: the statement's SQL with its Parse
        // (statement-unknown), or the connection's startup facts (user, database, application…).
        if (l.incompleteReason === 'statement-unknown' || differences(c, l).every((d) => d.startsWith('postgres.'))) { hpack = 'session'; t.hpack++; }
      }
      cases.push({ kind: 'untouched-not-exact', hpack, clean: c, mutated: l, connection: k, differs: l ? differences(c, l) : ['(no record)'] });
      continue;
    }
    t.touched++;
    if (l?.incomplete && l.incompleteReason) {
      t.marked++;
      t.reasons[l.incompleteReason] = (t.reasons[l.incompleteReason] ?? 0) + 1;
      continue;
    }
    if (!l && allDropped(c, k, drops, clean.dataFrames, clean.frameMap)) { t.vanished++; continue; }
    t.unmarked++;
    cases.push({ kind: 'touched-unmarked', clean: c, mutated: l, connection: k, differs: l ? differences(c, l) : ['(no record)'] });
  }
  for (const r of records) {
    const why = mismatch(r);
    if (why) {
      T(r.protocol).mismatched++;
      cases.push({ kind: 'mismatched-pair', why, mutated: r, clean: undefined, connection: recordKey(r) });
    }
    if (!index.used.has(r)) T(r.protocol).spurious++;
  }
  return { byProtocol, cases, records };
}

/**
 * Nothing that could identify the transaction survived, so no record can be asked of the decoder:
 * HTTP/2 and gRPC: every data packet carrying a frame of its stream was dropped. HTTP/1.x and
 * PostgreSQL: the packets carrying the start of its request (the request line, the Bind/Query) and
 * the start of its response (status line, first backend message) were both dropped: what is left is
 * message bytes after a gap, which name nothing.
 */
function allDropped(c, key, drops, dataFrames, frameMap) {
  const dropped = new Set(drops.map((d) => d.packet.frame));
  if (isH2(c)) {
    for (const [f, info] of frameMap) if (info.streams.has(c.streamId) && dataFrames.get(f)?.key === key && !dropped.has(f)) return false;
    return true;
  }
  if (c.request?.frames && !dropped.has(c.request.frames[0])) return false;
  if (c.response?.frames && !dropped.has(c.response.frames[0])) return false;
  return true;
}
