/**
 * Named bounds on what HTTP/2 decoding holds per connection (as http1/limits.ts and
 * reassembly/limits.ts name theirs). Each one crossed is a violation under its own code, never
 * silent. Frames are bounded by the peer's SETTINGS_MAX_FRAME_SIZE (http2.frame_size), the HPACK
 * table by MAX_TABLE_SIZE in hpack.ts (hpack.table_size_limit), bodies by --body-limit and gRPC
 * messages by --max-messages (records say bodyTruncated and messagesDropped).
 */

/** A header block (HEADERS + CONTINUATION) larger than this is dropped as hostile. */
export const MAX_HEADER_BLOCK = 256 * 1024;
/**
 * Decoded header fields kept per block, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them (name
 * + value + 32 per field, RFC 9113 §6.5.2). HPACK lets one byte repeat a table entry of up to the
 * table size, so a block within MAX_HEADER_BLOCK can decode to gigabytes once repeated fields are
 * joined; fields past this are dropped (http2.header_list_too_large).
 */
export const MAX_HEADER_LIST = 1 << 20;
/** Streams tracked per connection; the oldest unfinished are emitted incomplete past this (http2.too_many_streams). */
export const MAX_STREAMS = 10_000;
/** gRPC messages kept per direction of a call, without --max-messages. */
export const DEFAULT_MAX_MESSAGES = 100;

/** How many of `fields` fit in MAX_HEADER_LIST (RFC 9113 §6.5.2's size: name + value + 32 each). */
export function listPrefix(fields: readonly { name: string; value: string }[]): number {
  let size = 0;
  for (let i = 0; i < fields.length; i++) {
    size += fields[i]!.name.length + fields[i]!.value.length + 32;
    if (size > MAX_HEADER_LIST) return i;
  }
  return fields.length;
}
