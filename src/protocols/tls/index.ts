import type { ProtocolAnalyzer } from '../types.js';
import { probeTls } from './probe.js';
import { TlsSession } from './session.js';

/** TLS handshakes on the wire (no decryption): one exchange per connection. */
export const tls: ProtocolAnalyzer = {
  name: 'tls',
  transport: 'tcp',
  probe: probeTls,
  createSession: (ctx) => new TlsSession(ctx),
};
