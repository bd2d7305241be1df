// Drives decoders with fuzz input: a protocol session made through its analyzer and fed
// data / gap / fin / end (as the dispatcher would), the HPACK decoder alone, and a whole capture
// file through decodeCapture (the CLI's analyze). Every record is built and serialised as the
// CLI does. `mods` are the project's modules: dist/ from the harness, src/ from vitest.

/** The throws a caller may legitimately see: a file that is not a capture. Anything else escaped. */
export function expectedCaptureError(mods, err) {
  return err instanceof mods.CaptureFormatError;
}

function recordSink(mods, counts) {
  return (r) => {
    // The CLI's jsonl (cli/output.ts) and HAR writers.
    counts.bytes += JSON.stringify(r).length;
    if (r.protocol !== 'postgres') mods.harEntry(r);
    counts.records++;
  };
}

let connSeq = 0;

export function connection(rng) {
  const midStream = rng.chance(0.15);
  const v6 = rng.chance(0.1);
  return {
    id: `fuzz-${++connSeq}`,
    client: { ip: v6 ? '::1' : '10.0.0.1', port: rng.int(1024, 65535) },
    server: { ip: v6 ? '::2' : '10.0.0.2', port: rng.pick([80, 8080, 5432, 50051, 443, rng.int(1, 65535)]) },
    family: v6 ? 6 : 4,
    startTime: 1_765_000_000 + rng.int(0, 1000),
    firstFrame: 1,
    handshakeSeen: !midStream,
    midStream,
  };
}

/**
 * Feeds `steps` to a session of analyzer `name`. Returns what came out; a throw escapes to the
 * caller (the harness counts it: the dispatcher would have turned it into decoder.internal_error).
 */
export function runSession(mods, c) {
  const analyzer = mods.ANALYZERS.find((a) => a.name === c.analyzer && a.transport === 'tcp');
  if (!analyzer) throw new Error(`no analyzer ${c.analyzer}`);
  const out = { records: 0, bytes: 0, violations: {}, samples: [] };
  const sink = recordSink(mods, out);
  const builder = new mods.FlowBuilder({
    bodyLimit: c.bodyLimit, frames: true, protos: c.protos ? mods.protos : undefined, redactor: c.redact ? new mods.Redactor({ key: Buffer.from('fuzz') }) : undefined,
    redactParams: c.redact ? new mods.Redactor({ key: Buffer.from('fuzz') }) : undefined,
    violation: (code) => { out.violations[code] = (out.violations[code] ?? 0) + 1; },
  });
  const conn = c.conn;
  let session;
  const ctx = (resync) => ({
    conn, resync,
    options: { bodyLimit: c.bodyLimit, maxMessages: c.maxMessages, previewRows: c.previewRows },
    emit: (tx) => sink(builder.build(tx, conn)),
    violation: (code, reason) => {
      out.violations[code] = (out.violations[code] ?? 0) + 1;
      if (out.samples.length < 5) out.samples.push(`${code}: ${reason}`);
    },
    handover: (protocol) => {
      const next = mods.ANALYZERS.find((a) => a.name === protocol && a.transport === 'tcp');
      if (!next) return undefined;
      session = next.createSession(ctx(false));
      return session;
    },
    carried: (protocol) => mods.CARRIED.get(protocol),
  });
  session = analyzer.createSession(ctx(c.resync));
  const off = [0, 0];
  const ack = [-1, -1];
  let time = conn.startTime, frame = 1;
  for (const s of c.steps) {
    time += s.dt ?? 0.001;
    frame++;
    if (s.op === 'data') {
      session.data(s.dir, s.bytes, { time, frame, offset: off[s.dir], peerAck: ack[s.dir] });
      off[s.dir] += s.bytes.length;
      ack[1 - s.dir] = off[s.dir];
    } else if (s.op === 'gap') {
      session.gap(s.dir, s.len, { time, frame, offset: off[s.dir], peerAck: -1 });
      off[s.dir] += s.len;
    } else if (s.op === 'fin') session.fin(s.dir, time);
    else if (s.op === 'end') session.end(time, s.reason);
  }
  return out;
}

/** Header blocks through one HpackDecoder; HpackError is its way of saying "malformed". */
export function runHpack(mods, c) {
  const d = new mods.HpackDecoder({ maxTableSize: c.limit, desynced: c.desynced });
  const out = { fields: 0, errors: 0, violations: {} };
  for (const b of c.blocks) {
    try {
      const r = d.decode(b);
      out.fields += r.fields.length;
    } catch (err) {
      if (!(err instanceof mods.HpackError)) throw err;
      out.errors++;
      // What the HTTP/2 session does on a decoding error: the table is unknown from here on.
      if (c.desyncOnError) d.desync();
    }
    if (c.resize !== undefined) d.setMaxTableSizeLimit(c.resize);
  }
  return out;
}

/**
 * Analyzers that remember the stack of any throw out of a session before the dispatcher turns it
 * into decoder.internal_error, so a whole-capture failure names its line.
 */
export function watchedAnalyzers(mods, thrown) {
  return mods.ANALYZERS.map((a) => {
    if (a.transport !== 'tcp') return a;
    return {
      name: a.name, transport: a.transport,
      probe: (dir, b) => a.probe(dir, b),
      createSession(ctx) {
        const s = a.createSession(ctx);
        const guard = (fn) => (...args) => {
          try {
            return fn(...args);
          } catch (err) {
            thrown.push({ protocol: a.name, stack: err instanceof Error ? err.stack : String(err) });
            throw err;
          }
        };
        const w = { data: guard((...x) => s.data(...x)), gap: guard((...x) => s.gap(...x)), fin: guard((...x) => s.fin(...x)), end: guard((...x) => s.end(...x)) };
        if (s.adoptUpgrade) w.adoptUpgrade = guard((...x) => s.adoptUpgrade(...x));
        return w;
      },
    };
  });
}

/** A capture file through decodeCapture, every record serialised, the summary too. */
export async function runCapture(mods, file, opts = {}) {
  const out = { records: 0, bytes: 0, thrown: [] };
  const sink = recordSink(mods, out);
  const { summary } = await mods.decodeCapture(file, {
    analyzers: watchedAnalyzers(mods, out.thrown), onRecord: sink, bodyLimit: opts.bodyLimit, protos: opts.protos ? mods.protos : undefined,
    redactor: opts.redact ? new mods.Redactor({ key: Buffer.from('fuzz') }) : undefined, redactParams: opts.redact ? new mods.Redactor({ key: Buffer.from('fuzz') }) : undefined,
  });
  out.bytes += JSON.stringify(summary).length;
  out.violations = summary.violations.counts;
  out.packets = summary.packets;
  return out;
}
