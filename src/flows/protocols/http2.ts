import type { Http2Flow } from '../record.js';
import { httpFamily } from './http.js';
import type { RecordModule } from './module.js';

/** "RST_STREAM CANCEL": the reset or GOAWAY that ended a stream, as a row's status. */
export function streamEnd(r: { error?: Http2Flow['error'] }): string | undefined {
  return r.error ? `${r.error.frame} ${r.error.code}` : undefined;
}

/** The table's note for a stream's end: "RST_STREAM CANCEL by client". */
export function streamEndNote(r: { error?: Http2Flow['error'] }): string[] {
  return r.error ? [`${r.error.frame} ${r.error.code} by ${r.error.by}`] : [];
}

/** HTTP/2 (RFC 9113): an HTTP exchange on one stream, which a reset or GOAWAY may end. */
export const http2: RecordModule<Http2Flow> = {
  ...httpFamily,
  protocol: 'http2',
  title: 'HTTP/2',
  column: 'http2',
  rowStatus: (r) => httpFamily.rowStatus(r) ?? streamEnd(r),
  table(r) {
    const t = httpFamily.table(r);
    t.notes.push(...streamEndNote(r));
    return t;
  },
};
