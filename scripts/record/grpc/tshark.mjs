// tshark summaries of HTTP/2 and gRPC captures, used by scripts/record/http2.mjs and
// scripts/record/grpc.mjs to check that each recorded case shows what it was recorded for.
//
// summarize(file, port) decodes tcp.port==PORT as HTTP/2 (-d tcp.port==PORT,http2) and returns
//   { packets, frames: { DATA: n, HEADERS: n, ... }, frameList: [...], grpc: { messages, requests,
//     responses, compressed }, statuses: [grpc-status ...] }
// where frameList holds one entry per HTTP/2 frame: { frame, type, stream, flags, length, padLength }.
import { execFileSync } from 'node:child_process';

export const FRAME_TYPES = ['DATA', 'HEADERS', 'PRIORITY', 'RST_STREAM', 'SETTINGS', 'PUSH_PROMISE', 'PING', 'GOAWAY',
  'WINDOW_UPDATE', 'CONTINUATION'];

export const FLAG = { END_STREAM: 0x01, ACK: 0x01, END_HEADERS: 0x04, PADDED: 0x08, PRIORITY: 0x20 };

/** tshark -T fields with every occurrence of a field joined by '|'; one array per displayed packet. */
export function tsharkFields(file, port, filter, fields, extra = []) {
  const args = ['-r', file, '-d', `tcp.port==${port},http2`, ...extra, '-Y', filter, '-T', 'fields',
    '-E', 'occurrence=a', '-E', 'aggregator=|'];
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
  return out.split('\n').filter(Boolean).map((l) => l.split('\t').map((v) => (v === '' ? [] : v.split('|'))));
}

export function packetCount(file) {
  const out = execFileSync('capinfos', ['-M', '-c', file], { encoding: 'utf8' });
  return Number(/Number of packets:\s*(\d+)/.exec(out)[1]);
}

export function summarize(file, port) {
  const rows = tsharkFields(file, port, 'http2', ['frame.number', 'http2.type', 'http2.streamid', 'http2.flags',
    'http2.length', 'http2.padding']);
  const frames = {};
  const frameList = [];
  for (const [[num], types, streams, flags, lengths, pads] of rows) {
    // http2.padding (the Pad Length octet) is present only on frames with the PADDED flag, so it
    // cannot be zipped with the other per-frame fields; it is attributed to PADDED frames in order.
    let p = 0;
    types.forEach((t, i) => {
      const type = FRAME_TYPES[Number(t)] ?? `type${t}`;
      frames[type] = (frames[type] ?? 0) + 1;
      const f = Number(flags[i]);
      const padded = (type === 'DATA' || type === 'HEADERS' || type === 'PUSH_PROMISE') && (f & FLAG.PADDED) !== 0;
      frameList.push({ frame: Number(num), type, stream: Number(streams[i]), flags: f, length: Number(lengths[i]),
        padLength: padded ? parseInt(pads[p++], 16) : 0 });
    });
  }
  // gRPC messages (every message in a frame counts) and their compressed flags
  const g = tsharkFields(file, port, 'grpc', ['grpc.message_length', 'grpc.compressed_flag', 'http2.streamid']);
  let messages = 0;
  let compressed = 0;
  for (const [lens, flags] of g) {
    messages += lens.length;
    compressed += flags.filter((f) => f === '1' || f === 'True').length;
  }
  const statuses = tsharkFields(file, port, 'http2.header.name == "grpc-status"', ['http2.header.name', 'http2.header.value'])
    .flatMap(([names, values]) => names.map((n, i) => [n, values[i]]).filter(([n]) => n === 'grpc-status').map(([, v]) => v));
  return { packets: packetCount(file), frames, frameList, grpc: { messages, compressed }, statuses };
}

/** Compact one-line rendering of frame counts, in frame-type order. */
export function formatFrames(frames) {
  return FRAME_TYPES.filter((t) => frames[t]).map((t) => `${t} ${frames[t]}`).join(', ');
}

/** Header values of every HTTP/2 header named NAME, in capture order. */
export function headerValues(file, port, name) {
  return tsharkFields(file, port, `http2.header.name == "${name}"`, ['http2.header.name', 'http2.header.value'])
    .flatMap(([names, values]) => names.map((n, i) => [n, values[i]]).filter(([n]) => n === name).map(([, v]) => v));
}

export function check(cond, what) {
  if (!cond) throw new Error(`verification failed: ${what}`);
}

/**
 * Decode the gRPC messages with the .proto files in PROTO_DIR (tshark's protobuf search path) and return
 * { types: Set of message type names seen, warnings: [expert messages other than TCP's] }.
 */
export function protoDecode(file, port, protoDir) {
  const extra = ['-o', `uat:protobuf_search_paths:"${protoDir}","TRUE"`, '-o', 'protobuf.pbf_as_hf:TRUE'];
  const types = new Set(tsharkFields(file, port, 'protobuf', ['protobuf.message.name'], extra).flatMap(([n]) => n));
  const warnings = tsharkFields(file, port, '_ws.expert', ['_ws.expert.message'], extra).flatMap(([m]) => m)
    .filter((m) => !/^Connection (establish|finish)|^This frame (initiates|undergoes)|^TCP window|^Previous segment|^ACKed segment|retransmission/i.test(m));
  return { types, warnings };
}
