/**
 * pipeline/: packets in, records out: time order → decode → TCP reassembly → protocol dispatch →
 * records, UDP datagrams to datagram analyzers, byte streams without packets at Pipeline.streams;
 * decodeCapture for a file; decode coverage (what was not decoded); the callers' file reading
 * (.proto files, the redaction key).
 */
export type { CoverageServer, DecodeCoverage } from './coverage.js';
export { ENCRYPTED_REASON } from './coverage.js';
export { decodeCapture, type CaptureSummary, type DecodeOptions, type DecodedCapture } from './decode-capture.js';
export { DEFAULT_BODY_LIMIT, Pipeline } from './pipeline.js';
export { ServerNames } from './server-names.js';
export { PlaintextStreams, type PlaintextChunk, type PlaintextCounters, type PlaintextOrigin } from './plaintext.js';
export { LINKTYPE_RAW, PlaintextPackets, type PlaintextPacket, type PlaintextPacketCounters } from './plaintext-packets.js';
export type { LimitCounts } from './limits.js';
export { ProtoLoadError, loadProtos, type ProtoSchemas } from './protos.js';
export { loadRedactKey } from './redact-key.js';
