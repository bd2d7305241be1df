import type { GrpcMessage } from '../types.js';

/** Decoded header fields of one half: pseudo-header fields apart from the rest (RFC 9113 §8.3). */
export interface FieldSink {
  pseudo: Record<string, string>;
  headers: Record<string, string>;
}

export function assign(h: FieldSink, fields: { name: string; value: string }[]): void {
  for (const f of fields) {
    if (f.name.startsWith(':')) h.pseudo[f.name] = f.value;
    else h.headers[f.name] = joinField(h.headers[f.name], f.value, f.name);
  }
}

/** Repeated fields joined as in HTTP/1 records; cookie crumbs with "; " (RFC 9113 §8.2.3). */
export function joinField(prev: string | undefined, v: string, name: string): string {
  if (prev === undefined) return v;
  return `${prev}${name === 'cookie' ? '; ' : name === 'set-cookie' ? '\n' : ', '}${v}`;
}

export function addMessages(out: { messages?: GrpcMessage[]; messagesDropped?: number }, messages: GrpcMessage[], dropped: number): void {
  out.messages = messages;
  if (dropped > 0) out.messagesDropped = dropped;
}
