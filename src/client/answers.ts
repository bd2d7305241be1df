/**
 * How a failed exchange with a tapwire agent is worded, the same for JSON requests
 * (client/agent.ts) and event streams (client/sse.ts).
 */

/** Why fetch could not reach a server: the system's code (ECONNREFUSED, …) when it gives one. */
export function unreachableReason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e as Error).message;
}

/** The reason an error answer gives: the API's `{ "error": "…" }`, else the start of its body. */
export function answerReason(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: unknown } | null)?.error;
    if (typeof e === 'string') return e;
  } catch {
    // Not the API's JSON error: the start of the body says enough.
  }
  return text.slice(0, 200);
}
