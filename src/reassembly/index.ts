/**
 * reassembly/: TCP connection tracking and in-order byte streams per direction (RFC 9293):
 * duplicates dropped, overlaps trimmed, holes delivered as explicit gaps, every buffer bounded;
 * its output is the stream contract of stream/.
 */
export { CONNECTION_MEMORY, DEFAULT_REASSEMBLY_LIMITS, type ReassemblyLimits } from './limits.js';
export { TcpReassembler, type ReassemblyStats } from './tcp.js';
