import { grpc } from './grpc/index.js';
import { http1 } from './http1/index.js';
import { http2 } from './http2/index.js';
import { mysql } from './mysql/index.js';
import { postgres } from './postgres/index.js';
import { redis } from './redis/index.js';
import { tls } from './tls/index.js';
import type { Analyzer, CarriedProtocol } from './types.js';

/**
 * Every protocol tapwire decodes, in probe order. Adding one is a folder and a line here; each
 * declares its transport, and the pipeline gives TCP streams and UDP datagrams to their own.
 */
export const ANALYZERS: readonly Analyzer[] = [http1, http2, postgres, redis, mysql, tls];

/** Protocols carried inside another's streams, by name: HTTP/2 asks for "grpc" (SessionContext.carried). */
export const CARRIED: ReadonlyMap<string, CarriedProtocol> = new Map([[grpc.name, grpc]]);
