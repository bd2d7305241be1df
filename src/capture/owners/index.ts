/**
 * capture/owners/: which process holds each end of a TCP connection (tracepoints on connect and
 * accept, native/conn.bpf.c) and which TLS library it uses, so that TLS the uprobes could not read
 * is named with its process and why (issue 17, "Coverage").
 */
export { classifyExecutable, classifyProcess, LIBRARY_NAMES, type EndReason, type ProcessTls, type TlsLibraryName } from './classify.js';
export { OWNER_EVENT_SIZE, parseOwnerBatch, type OwnerEvent } from './events.js';
export {
  CONN_OBJECT_PATH, ConnectionOwners, OwnerWatch, ownersUnavailable,
  type ConnectionEnds, type ConnectionOwner, type OwnerCounters, type OwnerOptions,
} from './owners.js';
