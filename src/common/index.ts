/**
 * common/: what every stage shares and nothing else: the address formatter, counted violations,
 * defaults, hashes, times, plurals, the loopback rule.
 */
export { connectionKey, endpoint, hostPort, ipBytes, ipBytes16 } from './address.js';
export { DEFAULT_BODY_LIMIT } from './defaults.js';
export { shortHash } from './hash.js';
export { isLoopback, isLoopbackRequest } from './net.js';
export { countsText, fitToWidth, notDecodedParts, plural } from './text.js';
export { parseTime } from './time.js';
export { Violations } from './violations.js';
