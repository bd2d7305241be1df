import { grpc } from './grpc/index.js';
import { http1 } from './http1/index.js';
import { http2 } from './http2/index.js';
import { postgres } from './postgres/index.js';
import type { CarriedProtocol, ProtocolAnalyzer } from './types.js';

/** Every protocol tapwire decodes, in probe order. Adding one is a folder and a line here. */
export const ANALYZERS: readonly ProtocolAnalyzer[] = [http1, http2, postgres];

/** Protocols carried inside another's streams, by name: HTTP/2 asks for "grpc" (SessionContext.carried). */
export const CARRIED: ReadonlyMap<string, CarriedProtocol> = new Map([[grpc.name, grpc]]);
