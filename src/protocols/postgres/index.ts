import type { ProtocolAnalyzer } from '../types.js';
import { probePostgres } from './probe.js';
import { PgSession } from './session.js';

export const postgres: ProtocolAnalyzer = {
  name: 'postgres',
  probe: probePostgres,
  createSession: (ctx) => new PgSession(ctx),
};
