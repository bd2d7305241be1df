import type { ProbeResult } from '../types.js';
import { DEFAULT_MAX_FRAME, FLAG, FRAME, FRAME_HEADER, plausibleFrame, PREFACE } from './frames.js';

/** Frames that must line up back to back before bytes are taken for HTTP/2 mid-connection. */
const MIN_RUN = 2;

/**
 * Length of the run of plausible frames starting at `p` (frames that fit in `b` and follow each
 * other exactly), and whether the run ends exactly at the end of `b`. With `streamOk`, a frame on
 * a stream it refuses ends the run as an implausible one would.
 */
function run(b: Buffer, p: number, maxFrame: number, streamOk?: (stream: number) => boolean): { frames: number; exact: boolean; cut: boolean; firstHeaders: number } {
  let frames = 0;
  let firstHeaders = -1;
  while (p < b.length) {
    let n = plausibleFrame(b, p, maxFrame);
    if (n >= 0 && streamOk) {
      const stream = b.readUInt32BE(p + 5) & 0x7fffffff;
      if (stream !== 0 && !streamOk(stream)) n = -1;
    }
    // A plausible frame header whose payload runs past the segment: the frame is cut, not wrong.
    if (n >= 0 && p + n > b.length) return { frames, exact: false, cut: true, firstHeaders: firstHeaders < 0 && b[p + 3] === FRAME.HEADERS ? p : firstHeaders };
    if (n < 0) return { frames, exact: false, cut: false, firstHeaders };
    if (firstHeaders < 0 && b[p + 3] === FRAME.HEADERS) firstHeaders = p;
    frames++;
    p += n;
  }
  return { frames, exact: true, cut: false, firstHeaders };
}

/**
 * Finds where frames start in bytes caught mid-connection (or after a gap): the first position
 * from which at least two plausible frames follow each other and tile the rest of the segment.
 * Returns -1 when there is no such position: better no records than wrong ones. A session that
 * knows the connection's streams passes `streamOk`: inside a payload, shape alone matches by
 * chance (an empty DATA frame on stream 16 269 056, then a frame the segment cuts), and such runs
 * name streams the connection never came near.
 */
export function findFrameSync(b: Buffer, maxFrame = DEFAULT_MAX_FRAME, minRun = MIN_RUN, allowCut = false, streamOk?: (stream: number) => boolean): number {
  const limit = Math.min(b.length - FRAME_HEADER, 64 * 1024);
  for (let p = 0; p <= limit; p++) {
    const r = run(b, p, maxFrame, streamOk);
    // Inside a connection already known to be HTTP/2, whole frames may end in one the segment cuts.
    if ((r.exact || (allowCut && r.cut)) && r.frames + (r.cut ? 1 : 0) >= minRun && r.frames >= 1) return p;
  }
  return -1;
}

/**
 * Which side sent a header block, from its first field: a static-table :method (indices 2–3) or
 * :path (4–5) opens requests; :status (8–14) opens responses (RFC 7541 Appendix A).
 */
function blockSide(b: Buffer, headersAt: number): 'request' | 'response' | undefined {
  const flags = b[headersAt + 4]!;
  let p = headersAt + FRAME_HEADER;
  if (flags & FLAG.PADDED) p += 1;
  if (flags & FLAG.PRIORITY) p += 5;
  const first = b[p];
  if (first === undefined || (first & 0x80) === 0) return undefined;
  const idx = first & 0x7f;
  if (idx >= 2 && idx <= 7) return 'request';
  if (idx >= 8 && idx <= 14) return 'response';
  return undefined;
}

export function probeHttp2(dir: 0 | 1, b: Buffer): ProbeResult {
  // Prior knowledge or after Upgrade: the client connection preface (RFC 9113 §3.4).
  const n = Math.min(b.length, PREFACE.length);
  if (n > 0 && b.subarray(0, n).equals(PREFACE.subarray(0, n))) {
    if (n < PREFACE.length) return 'more';
    return dir === 0 ? 'match' : 'reverse';
  }
  // Caught mid-connection: frames by shape, tiling the segment exactly.
  const r = run(b, 0, DEFAULT_MAX_FRAME);
  // Whole frames then one the segment cuts: ask for more bytes (bounded by the dispatcher).
  if (r.cut && r.frames >= 1) return 'more';
  if (!r.exact || r.frames < MIN_RUN) {
    // A lone server SETTINGS frame (the server's preface) is HTTP/2 too.
    if (r.exact && r.frames === 1 && b[3] === FRAME.SETTINGS && b.length > FRAME_HEADER) return dir === 1 ? 'match' : 'reverse';
    if (r.frames === 0 && b.length < FRAME_HEADER && b.length > 0) return 'more';
    return 'no';
  }
  const side = r.firstHeaders >= 0 ? blockSide(b, r.firstHeaders) : undefined;
  if (side === 'request') return dir === 0 ? 'match' : 'reverse';
  if (side === 'response') return dir === 1 ? 'match' : 'reverse';
  return 'match';
}
