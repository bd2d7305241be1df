import type { Dir, StreamMeta } from '../../stream/index.js';
import type { ProtocolSession, SessionContext } from '../types.js';
import type { Msg, Req } from './message.js';

/**
 * The Upgrade handover (RFC 9110 §7.8) and CONNECT (RFC 9110 §9.3.6). After a request that asks
 * to switch, the client's next bytes may already be the new protocol's (an h2c client sends its
 * preface right after the request, RFC 7540 §3.2), so they are held, not parsed, until the server
 * answers: 101 or a 2xx to CONNECT switches the connection (the held bytes go to the protocol
 * that takes over, or nowhere); any other final answer declines, and they are replayed as HTTP/1.
 * Held bytes are copies (they outlive their packets) and bounded (maxUpgradeHold).
 */
export class UpgradeHold {
  /** The request that asked for an Upgrade/CONNECT, until the server answers it. */
  asked: Req | undefined;
  /** Set by the answer to `asked`; acted on once the response parser has stopped. */
  verdict: 'switch' | 'resume' | undefined;
  /** The protocol switched to ("websocket", "h2c", "tunnel" …), once accepted. */
  protocol: string | undefined;
  /** The session that took the connection over. */
  next: ProtocolSession | undefined;
  private request: Msg | undefined;
  private held: { bytes: Buffer; meta: StreamMeta }[] = [];
  private heldBytes = 0;

  constructor(private readonly max: number) {}

  /**
   * Holds a copy of client bytes; false (and nothing held any more) past the bound. The bytes after
   * the upgrade request in its own segment are held unchecked (`bounded` false): the bound applies
   * from the next segment on.
   */
  hold(bytes: Buffer, meta: StreamMeta, bounded = true): boolean {
    if (bounded && this.heldBytes + bytes.length > this.max) {
      this.drop();
      return false;
    }
    this.held.push({ bytes: Buffer.from(bytes), meta: { ...meta } });
    this.heldBytes += bytes.length;
    return true;
  }

  /** Where the held bytes start, and the ACK their first packet carried (undefined: none held). */
  first(): StreamMeta | undefined {
    return this.held[0]?.meta;
  }

  drop(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  /** The held bytes, in order, released. */
  take(): { bytes: Buffer; meta: StreamMeta }[] {
    const h = this.held;
    this.drop();
    return h;
  }

  /** The server accepted `req`'s Upgrade (101) or CONNECT (2xx): the rest is `protocol`. */
  accept(req: Msg, protocol: string): void {
    this.request = req;
    this.protocol = protocol;
    this.verdict = 'switch';
    this.asked = undefined;
  }

  /**
   * The switch takes effect: h2c goes on in the HTTP/2 analyzer (the upgrade request becomes its
   * stream 1, RFC 7540 §3.2); other protocols are not decoded. `serverRest` follows the 101.
   */
  handOver(ctx: SessionContext, serverRest: Buffer, serverMeta: StreamMeta): void {
    const held = this.take();
    if (this.protocol !== 'h2c') return;
    const next = ctx.handover('http2');
    if (!next) return;
    this.next = next;
    const req = this.request;
    if (req && next.adoptUpgrade) {
      next.adoptUpgrade({ method: req.info.method ?? 'GET', path: req.info.url ?? '/', headers: req.headers, time: req.start.time, frame: req.start.frame });
    }
    for (const h of held) next.data(0 as Dir, h.bytes, h.meta);
    if (serverRest.length) next.data(1, serverRest, serverMeta);
  }
}
