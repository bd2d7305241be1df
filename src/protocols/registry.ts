import { http1 } from './http1/index.js';
import { http2 } from './http2/index.js';
import { postgres } from './postgres/index.js';
import type { ProtocolAnalyzer } from './types.js';

/** Every protocol tapwire decodes, in probe order. Adding one is a folder and a line here. */
export const ANALYZERS: readonly ProtocolAnalyzer[] = [http1, http2, postgres];
