/**
 * stream/: the contract between whatever produces a connection's in-order bytes (TCP reassembly,
 * or a source of already-decrypted streams) and the protocol analyzers that read them.
 */
export * from './types.js';
