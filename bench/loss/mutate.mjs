// The mutations: random loss of TCP data segments, and reordering of data segments without loss.
// Both keep every packet's original frame number (tapwire puts it in records' `frames`), so records
// of the mutated run compare with the clean run's by frame.

import { mulberry32 } from '../../scripts/record/prng.mjs';

/** A deterministic PRNG per seed; returns () => float in [0, 1). */
export function prng(seed) {
  return mulberry32(seed * 0x9e3779b1);
}

/**
 * Drop each TCP packet with payload > 0 with probability RATE (SYN, bare ACK and FIN without data
 * stay; so does a segment the capture shows again later, see retransmitted). Returns { packets, dropped } where dropped are the removed entries.
 */
export function dropSegments(entries, rate, seed) {
  const rnd = prng(seed);
  const packets = [];
  const dropped = [];
  const resent = retransmitted(entries);
  for (const e of entries) {
    if (e.tcp && e.tcp.len > 0 && rnd() < rate && !resent.has(e)) dropped.push(e);
    else packets.push(e);
  }
  return { packets, dropped };
}

/**
 * Data segments whose bytes the capture shows again later (a TCP retransmission of the same
 * sequence range, same direction): losing that first copy loses no byte, the decoder gets them
 * from the retransmission, so such a copy is never dropped (it would count a transaction
 * "touched" that lost nothing).
 */
function retransmitted(entries) {
  const seen = new Map();
  const out = new Set();
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i];
    if (!e.tcp || e.tcp.len === 0) continue;
    const k = `${e.tcp.key}|${e.tcp.from}|${e.tcp.seq}`;
    const later = seen.get(k);
    if (later !== undefined && later >= e.tcp.len) out.add(e);
    seen.set(k, Math.max(later ?? 0, e.tcp.len));
  }
  return out;
}

/**
 * Delay a fraction RATE of TCP data segments past the next 1..3 data segments of the same
 * connection and direction, never past a data segment of the other direction (a request is not
 * moved after its own response: what TCP reordering in one flight looks like). Nothing is lost. A
 * delayed packet takes the timestamp of the packet it now follows, so tapwire's time ordering keeps
 * it there: the reassembler sees a real out-of-order segment. With pastAcks, it may also land after
 * bare ACKs of the other direction, including the peer's ACK of its own bytes (as a capture point
 * that reorders shows it); without, it never passes any packet of the other direction. Returns
 * { packets, moved } (moved: the delayed entries). A segment the capture retransmits later is not
 * moved: the retransmission would carry its bytes first, and the record name the later frame.
 */
export function reorderSegments(entries, rate, seed, { pastAcks = true } = {}) {
  const rnd = prng(seed);
  const list = entries.map((e) => ({ ...e, original: e }));
  const moved = [];
  const resent = retransmitted(entries);
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    if (!e.tcp || e.tcp.len === 0 || e.moved || rnd() >= rate || resent.has(e.original)) continue;
    const skip = 1 + Math.floor(rnd() * 3);
    let seen = 0;
    let at = -1;
    for (let j = i + 1; j < list.length && seen < skip; j++) {
      const f = list[j];
      if (!f.tcp || f.tcp.key !== e.tcp.key) continue;
      if (f.tcp.from !== e.tcp.from && (f.tcp.len > 0 || !pastAcks)) break;
      if (f.tcp.len === 0) continue;
      seen++;
      at = j;
    }
    if (at < 0) continue;
    const target = list[at];
    const delayed = { ...e, moved: true, packet: { ...e.packet, time: target.packet.time } };
    list.splice(i, 1);
    list.splice(at, 0, delayed); // after the removal, index `at` is right after the target
    moved.push(delayed);
    i--; // the entry now at i has not been considered
  }
  return { packets: list, moved };
}
