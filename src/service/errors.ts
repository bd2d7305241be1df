/**
 * A query a source cannot answer as asked: `bad` input (a time that is not one, a cursor it never
 * gave) or something `missing` (no such snapshot). The message names the parameter first
 * ("since: …", "cursor: …"); the API answers 400 or 404 with it, MCP tools an error naming it.
 */
export class SourceError extends Error {
  /** `cause`: what the source itself answered (a remote agent's AgentClientError, naming its URL). */
  constructor(readonly kind: 'bad' | 'missing', message: string, o?: { cause?: unknown }) {
    super(message, o);
    this.name = 'SourceError';
  }

  /** The parameter the message names ("since" of "since: …"). */
  get argument(): string {
    return /^([a-z_]+):/.exec(this.message)?.[1] ?? 'query';
  }
}
