// Shrinks a failing input while it still fails the same way (same signature): fewer session calls
// or packets first (delta debugging by chunks), then shorter byte runs. Bounded in time.
import { parsePcap, writePcap } from './pcapio.mjs';

/** Removes chunks of `items` (halves, quarters, … single items) while `fails(list)` holds. */
async function ddmin(items, fails, deadline) {
  let list = items;
  let n = 2;
  while (list.length >= 1 && Date.now() < deadline) {
    const size = Math.max(1, Math.ceil(list.length / n));
    let reduced = false;
    for (let i = 0; i < list.length && Date.now() < deadline; i += size) {
      const candidate = [...list.slice(0, i), ...list.slice(i + size)];
      if (await fails(candidate)) { list = candidate; reduced = true; break; }
    }
    if (reduced) n = Math.max(2, n - 1);
    else if (size === 1) break;
    else n = Math.min(list.length, n * 2);
  }
  return list;
}

/** A session case (steps) or an HPACK case (blocks), smaller and still failing. */
export async function minimizeDirect(input, fails, budgetMs = 10_000) {
  const deadline = Date.now() + budgetMs;
  if (input.kind === 'hpack') {
    const blocks = await ddmin(input.blocks, (b) => fails({ ...input, blocks: b }), deadline);
    return { ...input, blocks };
  }
  let steps = await ddmin(input.steps, (s) => fails({ ...input, steps: s }), deadline);
  // Then each data step's bytes: cut its tail, then its head, by halves.
  for (let i = 0; i < steps.length && Date.now() < deadline; i++) {
    if (!steps[i].bytes) continue;
    for (const end of [true, false]) {
      let keep = steps[i].bytes.length;
      for (let cut = Math.floor(keep / 2); cut >= 1 && Date.now() < deadline; cut = Math.floor(cut / 2)) {
        while (cut <= steps[i].bytes.length) {
          const b = steps[i].bytes;
          const nb = end ? b.subarray(0, b.length - cut) : b.subarray(cut);
          const cand = steps.map((s, j) => (j === i ? { ...s, bytes: nb } : s));
          if (!(await fails({ ...input, steps: cand }))) break;
          steps = cand;
          keep = nb.length;
        }
      }
    }
  }
  return { ...input, steps };
}

/** A capture's packets, fewer and still failing; pcapng and garbage are cut by bytes instead. */
export async function minimizeCapture(bytes, fails, budgetMs = 10_000) {
  const deadline = Date.now() + budgetMs;
  const f = parsePcap(bytes);
  if (!f) {
    let b = bytes;
    for (let cut = Math.floor(b.length / 2); cut >= 1 && Date.now() < deadline; cut = Math.floor(cut / 2)) {
      while (cut < b.length && Date.now() < deadline && (await fails(b.subarray(0, b.length - cut)))) b = b.subarray(0, b.length - cut);
    }
    return b;
  }
  // Keep any trailing bytes past the last whole record (a cut record may be the point).
  const whole = writePcap(f);
  const tail = bytes.subarray(whole.length);
  const make = (records) => Buffer.concat([writePcap({ ...f, records }), tail]);
  const records = await ddmin(f.records, (r) => fails(make(r)), deadline);
  return make(records);
}
