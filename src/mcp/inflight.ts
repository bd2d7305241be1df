/**
 * The tool calls running in this server process, so that shutting down can cancel them and wait
 * for them: a cancelled run_and_verify still kills its command, stops its snapshot and records the
 * run, and only then may the backend be closed (closing it under a run would stop the snapshot
 * twice and lose the run).
 */

/** How long a shutdown waits for cancelled calls: a run's own cleanup takes well under a second. */
export const SETTLE_MS = 10_000;

interface Call {
  abort: AbortController;
  done: Promise<unknown>;
}

export class InFlight {
  private readonly calls = new Set<Call>();
  private closing = false;

  get size(): number {
    return this.calls.size;
  }

  /**
   * Runs `fn` with a signal that aborts when the caller's does or when the server shuts down;
   * a call that arrives during shutdown starts already aborted.
   */
  track<T>(signal: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const abort = new AbortController();
    if (signal) {
      if (signal.aborted) abort.abort(signal.reason);
      else signal.addEventListener('abort', () => abort.abort(signal.reason), { once: true });
    }
    if (this.closing) abort.abort(new Error('the server is shutting down'));
    const done = fn(abort.signal);
    const call = { abort, done };
    this.calls.add(call);
    const forget = () => { this.calls.delete(call); };
    done.then(forget, forget);
    return done;
  }

  /**
   * Aborts every call and waits for them to finish, at most `ms`; resolves with how many were
   * still running then.
   */
  async settle(ms: number = SETTLE_MS, log?: (line: string) => void): Promise<number> {
    this.closing = true;
    if (this.calls.size === 0) return 0;
    log?.(`tapwire mcp: shutting down: cancelling ${this.calls.size} tool call(s) in flight; waiting up to ${ms / 1000} s for them to stop their snapshots and record their runs`);
    const all = [...this.calls];
    for (const c of all) c.abort.abort(new Error('the server is shutting down'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(all.map((c) => c.done)),
      new Promise((r) => { timer = setTimeout(r, ms); }),
    ]);
    clearTimeout(timer);
    const left = this.calls.size;
    if (left > 0) log?.(`tapwire mcp: ${left} tool call(s) still running after ${ms / 1000} s: closing anyway (their runs may not be recorded)`);
    return left;
  }
}
