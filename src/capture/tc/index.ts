/**
 * capture/tc/: the eBPF packet source (issue 18): TC clsact classifiers (native/tc.bpf.c) copy
 * each frame, with a kernel timestamp, into a ring buffer read through the addon.
 */
export { parseTcBatch, TC_EVENT_SIZE, type TcDirection, type TcFrame } from './events.js';
export { compileTcFilter, TC_FILTER_MAX, type CompiledTcFilter, type TcFilter } from './filter.js';
export { DEFAULT_TC_RING_BYTES, interfaceIndex, TC_OBJECT_PATH, TcCapture, tcCaptureUnavailable, type TcCounters, type TcOptions } from './source.js';
export { kernelPrefilter, type KernelPrefilter } from './expression.js';
export { LinkWatch, linkMatcher, linkWatchUnavailable, type Link, type LinkChange, type LinkWatchCounters, type LinkWatchOptions } from './links.js';
