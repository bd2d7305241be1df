import type { FlowRecord, RecordMessage } from '../flows/index.js';

export const DEFAULT_BODY_BYTES = 4096;

/** A flow as a tool returns it, and what of its payloads was left out or cut. */
export interface FlowView {
  flow: FlowRecord;
  /** Payload fields left out or cut, e.g. "response.body (cut to 4096 of 18000 bytes)". */
  payloads: string[];
  /** Payload bytes (or JSON characters, for decoded messages) not returned. */
  bytesOmitted: number;
}

/**
 * A copy of the record with its payloads (HTTP bodies, gRPC messages, SQL result previews) left
 * out (`maxBytes` undefined) or each cut to `maxBytes`. Headers, sizes, statuses and timings stay:
 * they are what an agent reads first, and `bodySize` still says how big each body was.
 */
export function viewFlow(r: FlowRecord, maxBytes: number | undefined): FlowView {
  const flow = structuredClone(r) as FlowRecord;
  const payloads: string[] = [];
  let bytesOmitted = 0;
  for (const side of ['request', 'response'] as const) {
    const h = flow[side] as Record<string, unknown> | undefined;
    if (!h) continue;
    if (typeof h.body === 'string') {
      const cut = cutBody(h.body, h.bodyEncoding === 'base64', maxBytes);
      if (cut.omitted > 0) {
        bytesOmitted += cut.omitted;
        payloads.push(maxBytes === undefined ? `${side}.body (${cut.omitted} bytes)` : `${side}.body (cut to ${maxBytes} of ${cut.omitted + maxBytes} bytes)`);
        if (cut.body === undefined) {
          delete h.body;
          delete h.bodyEncoding;
        } else h.body = cut.body;
      }
    }
    if (Array.isArray(h.messages)) {
      (h.messages as RecordMessage[]).forEach((m, i) => {
        const size = JSON.stringify(m.json ?? m.fields ?? m.data ?? null).length;
        if (maxBytes !== undefined && size <= maxBytes) return;
        if (m.json === undefined && m.fields === undefined && m.data === undefined) return;
        delete m.json;
        delete m.fields;
        delete m.data;
        bytesOmitted += size;
        payloads.push(`${side}.messages[${i}] decoded content (${size} characters)`);
      });
    }
    if (Array.isArray(h.preview)) {
      const size = JSON.stringify(h.preview).length;
      if (maxBytes === undefined || size > maxBytes) {
        delete h.preview;
        bytesOmitted += size;
        payloads.push(`${side}.preview rows (${size} characters)`);
      }
    }
  }
  return { flow, payloads, bytesOmitted };
}

/** A body left out, or cut to `max` bytes (base64 re-encoded over the kept bytes). */
function cutBody(body: string, base64: boolean, max: number | undefined): { body?: string; omitted: number } {
  const bytes = Buffer.from(body, base64 ? 'base64' : 'utf8');
  if (max === undefined) return { omitted: bytes.length };
  if (bytes.length <= max) return { body, omitted: 0 };
  const kept = bytes.subarray(0, max);
  // A UTF-8 character cut in half decodes as U+FFFD: drop it rather than show a false character.
  return { body: base64 ? kept.toString('base64') : kept.toString('utf8').replace(/\uFFFD$/, ''), omitted: bytes.length - max };
}
