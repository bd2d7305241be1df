/**
 * api/: the HTTP flow API over any FlowSource (service/): flows with filter and cursor, one flow,
 * snapshots and their pcaps, the service map, runs, verdicts, SSE streams, metrics. The same API
 * an agent serves, and the hub will.
 */
export { createApi } from './server.js';
