import type { ProtocolAnalyzer } from '../types.js';
import { probeMysql } from './probe.js';
import { MysqlSession } from './session.js';

export type { MysqlExchange, MysqlTransaction } from './types.js';
export { fingerprint } from './fingerprint.js';

export const mysql: ProtocolAnalyzer = {
  name: 'mysql',
  transport: 'tcp',
  probe: probeMysql,
  createSession: (ctx) => new MysqlSession(ctx),
};
