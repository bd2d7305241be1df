import { connectionKey } from '../common/index.js';
import type { ConnectionInfo } from '../stream/index.js';

/** Connections remembered; past it the oldest go first (a record is marked within seconds of its handshake). */
const MAX_NAMES = 65_536;

/**
 * The server names (SNI) the packet capture's ClientHellos asked for, by connection, as soon as
 * each was read: the live agent marks records it decrypted through uprobes with the name of the
 * same connection's handshake (`tls.sni`), which the plaintext itself never carries.
 */
export class ServerNames {
  private readonly names = new Map<string, string>();

  record(conn: ConnectionInfo, name: string): void {
    const key = connectionKey(conn.client, conn.server);
    this.names.delete(key);
    this.names.set(key, name);
    if (this.names.size > MAX_NAMES) this.names.delete(this.names.keys().next().value!);
  }

  /** The name for the connection between a and b (either order), if its ClientHello was seen. */
  of(a: { ip: string; port: number }, b: { ip: string; port: number }): string | undefined {
    return this.names.get(connectionKey(a, b));
  }

  get size(): number {
    return this.names.size;
  }
}
