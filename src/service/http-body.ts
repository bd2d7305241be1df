import type { IncomingMessage } from 'node:http';

/** A request body that cannot be read as JSON: too large (413), or not JSON (400). */
export class BodyError extends Error {
  constructor(readonly status: 400 | 413, message: string) {
    super(message);
    this.name = 'BodyError';
  }
}

/**
 * A request's JSON body, read up to `maxBytes`: past it a BodyError 413 stating the limit, and
 * nothing is buffered beyond it. An empty body is undefined; one that is not JSON a BodyError 400
 * saying why. The one body reader of tapwire's HTTP servers (the API, MCP over Streamable HTTP).
 */
export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes) throw new BodyError(413, `request body larger than ${maxBytes} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BodyError(400, `not valid JSON (${(e as Error).message})`);
  }
}
