import type { IncomingMessage } from 'node:http';
import { parseRunRecord, RunRecordError, type RunRecord } from '../run/index.js';
import { DEFAULT_MAX_RUNS, type RunLog } from '../store/index.js';
import { limitParam, readBody } from './params.js';
import { bad, notFound } from './errors.js';

/**
 * The agent's run log over HTTP: `tapwire run --api` and run_and_verify (through an agent) keep
 * each run with `POST /api/runs`; run_history and runs_touching read them with `GET /api/runs`.
 */
export type RunStore = RunLog<RunRecord>;

/** A run record with its findings' evidence is a few KiB; far more is not a run. */
const MAX_RUN_BODY = 1024 * 1024;

function need(runs: RunStore | undefined): RunStore {
  if (!runs) throw notFound('this agent keeps no run log');
  return runs;
}

/**
 * `POST /api/runs` with a run record: checked field by field (a 400 names the field), then kept.
 * Posting a run already kept (a client retrying) keeps it once: 200 instead of 201.
 */
export async function addRun(req: IncomingMessage, runs: RunStore | undefined): Promise<{ status: number; body: { id: string } }> {
  const log = need(runs);
  let run: RunRecord;
  try {
    run = parseRunRecord(await readBody(req, MAX_RUN_BODY));
  } catch (e) {
    if (e instanceof RunRecordError) throw bad(e.field === 'body' ? e.message : `body.${e.message}`);
    throw e;
  }
  if (log.has(run.id)) return { status: 200, body: { id: run.id } };
  log.append(run);
  return { status: 201, body: { id: run.id } };
}

/** `GET /api/runs[?limit=N]` → `{ runs, problems? }`: newest first (100, up to all the log keeps); problems are run-log lines skipped. */
export function runsBody(runs: RunStore | undefined, url: URL): { runs: RunRecord[]; problems?: string[] } {
  const r = need(runs).list(limitParam(url.searchParams.get('limit'), DEFAULT_MAX_RUNS));
  return r.problems.length ? r : { runs: r.runs };
}
