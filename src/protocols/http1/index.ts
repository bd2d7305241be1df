import type { ProtocolAnalyzer } from '../types.js';
import { probeHttp1 } from './probe.js';
import { Http1Session } from './session.js';

export const http1: ProtocolAnalyzer = {
  name: 'http',
  transport: 'tcp',
  probe: probeHttp1,
  createSession: (ctx) => new Http1Session(ctx),
};
