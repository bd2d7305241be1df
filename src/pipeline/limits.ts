import { httpHalves, type FlowRecord, type RecordMessage } from '../flows/index.js';

/**
 * Limits that records show one at a time, counted for the whole capture under stable names, so a
 * summary says how often each was hit without reading every record. The limits that stop decoding
 * are violations by code (http.header_overflow, http2.header_block_too_large, pg.message_too_large
 * …) and reassembly's are in its stats (evictions, forcedGaps); these are the rest.
 */
export interface LimitCounts {
  /** Request or response bodies whose preview stopped at --body-limit (`bodyTruncated`). */
  bodyTruncated: number;
  /** gRPC messages not kept past --max-messages (the records' `messagesDropped`, summed). */
  grpcMessagesDropped: number;
  /** gRPC messages of which only --body-limit bytes were kept (a message's `truncated`). */
  grpcMessagesTruncated: number;
  /**
   * Exchanges reported incomplete because a per-connection bound pushed them out (incompleteReason
   * "evicted"): HTTP/1 pending requests (http.pending_requests), HTTP/2 streams (http2.too_many_streams).
   */
  evictedExchanges: number;
  /** UDP flows a datagram analyzer stopped tracking past its flow limit. */
  evictedDatagramFlows: number;
  /** TCP connections given up unidentified at a probe limit (by which: the dispatcher's `gaveUp`). */
  probeGaveUp: number;
}

export class LimitCounter {
  readonly counts: LimitCounts = { bodyTruncated: 0, grpcMessagesDropped: 0, grpcMessagesTruncated: 0, evictedExchanges: 0, evictedDatagramFlows: 0, probeGaveUp: 0 };

  record(r: FlowRecord): void {
    const c = this.counts;
    if (r.incompleteReason === 'evicted') c.evictedExchanges++;
    if (!httpHalves(r)) return;
    for (const h of [r.request, r.response]) {
      if (!h) continue;
      if (h.bodyTruncated) c.bodyTruncated++;
      if (h.messagesDropped) c.grpcMessagesDropped += h.messagesDropped;
      if (h.messages) c.grpcMessagesTruncated += truncated(h.messages);
    }
  }
}

function truncated(ms: readonly RecordMessage[]): number {
  let n = 0;
  for (const m of ms) if (m.truncated) n++;
  return n;
}
