/**
 * capture/tls/: TLS plaintext through eBPF uprobes on OpenSSL and Go crypto/tls (native/, optional addon).
 */
export { addonLoadError, BUILD_HINT as TLS_BUILD_HINT, tlsProbesUnavailable, type AddonCounters } from './addon.js';
export { ConnResolver, parseProcNetTcp, type ConnCounters, type TcpTuple } from './conn.js';
export { inspectElf, SSL_FUNCTIONS, type ElfSslInfo } from './elf.js';
export { parseBatch, TLS_CHUNK_MAX, TLS_CHUNKS_PER_CALL, TLS_EVENT_HDR_SIZE, type FdSource, type RawTlsEvent, type TlsLibrary } from './events.js';
export { GO_TLS_FUNCTIONS, inspectGo, type GoFunction, type GoTlsInfo } from './goelf.js';
export {
  openTlsProbes, TlsProbes, TlsProbesUnavailableError,
  type AttachResult, type LateAttach, type TlsChunk, type TlsEnd, type TlsExit, type TlsProbeCounters, type TlsProbeOptions, type TlsTargetSpec,
} from './probes.js';
export { plaintextFilter } from './filter.js';
export { describeTarget, findTlsTargets, processFiles, type ProcessFile, type TargetScan, type TlsTarget, type UnprobeableTarget } from './targets.js';
