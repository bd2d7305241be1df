/**
 * capture/: packet sources. Streaming pcap and pcapng readers (flat memory, a cut file decoded up
 * to the cut), live libpcap capture through the optional `cap` binding, and the time-order window
 * that puts packets in capture-time order.
 */
export { CaptureOpenError, LiveCapture, type LiveCounters } from './live.js';
export { openLiveSource, sourceUnavailable, SOURCE_CHOICES, type CaptureCounters, type LiveSource, type SourceChoice, type SourceOptions } from './sources.js';
export { captureSize, readCapture } from './reader.js';
export { DEFAULT_TIME_ORDER, TimeOrder, type TimeOrderOptions } from './timeorder.js';
export { CaptureFormatError, type Packet, type ReaderInfo } from './types.js';
export {
  decodeMark, encodeMark, markComment, parseMarkComment, PLAINTEXT_COMMENT_PREFIX, PLAINTEXT_INTERFACE, PLAINTEXT_INTERFACE_DESCRIPTION, type PlaintextMark,
} from './plaintext-mark.js';
export * from './tls/index.js';
export * from './owners/index.js';
export * from './tc/index.js';
