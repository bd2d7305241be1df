// The recorded captures the capture mutations start from: this project's pcaps/ and, when it is
// beside the checkout, ../shared/pcaps (read in place, never copied). Listed sorted, so a case's
// seed picks the same base on any machine with the same files.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CAPTURE_MUTATIONS, mutateCapture } from './capture-mutations.mjs';
import { lengthFields, parsePcap } from './pcapio.mjs';
import { Rng } from './prng.mjs';

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (/\.(pcap|pcapng|cap)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Capture files under the roots that exist, relative names sorted. */
export function listCaptures(root) {
  const roots = [join(root, 'pcaps'), join(root, '..', 'shared', 'pcaps')].filter((d) => existsSync(d));
  return roots.flatMap((d) => walk(d)).filter((f) => statSync(f).size > 0).sort((a, b) => relative(root, a).localeCompare(relative(root, b)));
}

/** The protocol family a capture was recorded for (its folder), for the report. */
export function captureFamily(root, file) {
  const rel = relative(root, file).split(/[\\/]/);
  return rel[0] === 'pcaps' ? rel[1] : `shared/${rel[3] ?? rel[2]}`.replace(/\.pcap(ng)?$/, '');
}

/** Per worker: capture bytes and which length fields each holds, read once. */
export class CaptureBase {
  constructor(files) {
    this.files = files;
    this.bytes = new Map();
    this.kinds = new Map();
  }

  read(f) {
    let b = this.bytes.get(f);
    if (!b) this.bytes.set(f, (b = readFileSync(f)));
    return b;
  }

  /** Captures holding a length field of `kind` (all, when the mutation needs none). */
  eligible(kind) {
    if (!kind) return this.files;
    let list = this.kinds.get(kind);
    if (!list) {
      list = this.files.filter((f) => {
        const p = parsePcap(this.read(f));
        return p !== undefined && lengthFields(p, kind).length > 0;
      });
      this.kinds.set(kind, list);
    }
    return list.length ? list : this.files;
  }

  /** The mutated bytes of capture case `c`, and the files they came from. */
  build(c) {
    const rng = new Rng(c.seed);
    const m = CAPTURE_MUTATIONS[c.mutation];
    // Large recordings are slow to mutate and decode: picked a tenth as often.
    let base;
    do base = rng.pick(this.eligible(m.needs)); while (statSync(base).size > 1_000_000 && rng.chance(0.9));
    const other = m.pair || rng.chance(0.15) ? rng.pick(this.files) : undefined;
    const bytes = mutateCapture(c.mutation, this.read(base), rng, other && this.read(other));
    return { bytes, base, other, bodyLimit: rng.pick([undefined, 0, 64]), protos: rng.chance(0.5), redact: rng.chance(0.3) };
  }
}
