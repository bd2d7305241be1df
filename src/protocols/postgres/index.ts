import type { ProtocolAnalyzer } from '../types.js';
import { probePostgres } from './probe.js';
import { PgSession } from './session.js';

export const postgres: ProtocolAnalyzer = {
  name: 'postgres',
  transport: 'tcp',
  probe: probePostgres,
  createSession: (ctx) => new PgSession(ctx),
};
