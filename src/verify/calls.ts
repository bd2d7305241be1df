import { createHash } from 'node:crypto';
import { recordModule, type FlowRecord } from '../flows/index.js';
import type { ServiceNames } from './services.js';
import { endpoint } from '../common/index.js';

/**
 * What makes two calls "the same call": for HTTP and gRPC the destination, method, path and a hash
 * of the request body; for PostgreSQL the destination, query fingerprint and parameters. Retries and
 * redundant calls are both found by grouping on this key.
 */
export function callKey(r: FlowRecord): string | undefined {
  return recordModule(r).callKey(r, endpoint(r.dst));
}

/**
 * What a call got back, as a hash: status and body for HTTP and gRPC, the command tag, rows and
 * error for PostgreSQL. Identical answers to identical calls mean the first could have been reused.
 */
export function answerKey(r: FlowRecord): string | undefined {
  if (!r.response) return undefined;
  return createHash('sha1').update(JSON.stringify(recordModule(r).answer(r))).digest('hex').slice(0, 16);
}

/** A human name for the call in summaries: the operation and the service it went to. */
export function callName(r: FlowRecord, names?: ServiceNames): string {
  const server = names ? names.name(r.dst) : endpoint(r.dst);
  return recordModule(r).callName(r, server, names !== undefined && server !== endpoint(r.dst));
}

/** HTTP 5xx, gRPC non-OK, SQL errors, and no answer at all: a failure a client may retry. */
export function failed(r: FlowRecord): boolean {
  return recordModule(r).failed(r);
}

/** Statements that are not work: transaction control and session settings (issue 5, "Not redundant"). */
export function isTransactionControl(r: FlowRecord): boolean {
  return recordModule(r).routine(r) === 'transaction-control';
}

/** Health checks are expected to repeat. */
export function isHealthCheck(r: FlowRecord): boolean {
  return recordModule(r).routine(r) === 'health-check';
}
