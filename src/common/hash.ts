import { createHash } from 'node:crypto';

/**
 * A short content hash (SHA-256, 16 hex digits): how a spec is recognised across runs
 * (run_history matches on it) and how an MCP cursor is tied to its query.
 */
export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
