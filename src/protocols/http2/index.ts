import type { ProtocolAnalyzer } from '../types.js';
import { probeHttp2 } from './probe.js';
import { Http2Session } from './session.js';

export const http2: ProtocolAnalyzer = {
  name: 'http2',
  transport: 'tcp',
  probe: probeHttp2,
  createSession: (ctx) => new Http2Session(ctx),
};
