import type { IncomingMessage } from 'node:http';
import { ApiError, bad } from './errors.js';

/**
 * A request's JSON body, read up to `maxBytes` (413 beyond: the limit is stated, nothing is
 * buffered past it). An empty body is undefined; a body that is not JSON is a 400 saying why.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > maxBytes) throw new ApiError(413, `request body larger than ${maxBytes} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw bad(`body: not valid JSON (${(e as Error).message})`);
  }
}
