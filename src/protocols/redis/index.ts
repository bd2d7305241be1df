import type { ProtocolAnalyzer } from '../types.js';
import { probeRedis } from './probe.js';
import { RedisSession } from './session.js';

export const redis: ProtocolAnalyzer = {
  name: 'redis',
  transport: 'tcp',
  probe: probeRedis,
  createSession: (ctx) => new RedisSession(ctx),
};
