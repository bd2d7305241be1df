/**
 * Reassembly delivers byte streams: their types live in src/stream/, where a source of streams
 * without packets finds them too. Re-exported here for the code that still imports them from
 * reassembly (to be moved with the stage boundaries).
 */
export * from '../stream/index.js';
