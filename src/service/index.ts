/**
 * service/: the one port between tapwire's core and its front doors (the HTTP API, the MCP server,
 * the CLI). A FlowSource answers flow queries, gets a flow by id, lists snapshots, draws the
 * service map and streams new flows; CaptureSource (a capture file in memory), StoreSource (a flow
 * store and its feed: the agent's own), RemoteSource (an agent over HTTP) implement it, and the
 * hub will too.
 */
export type { EventPage, FlowEvent, FlowSource, FlowSubscription, ServiceEdge, ServiceMapAnswer, SnapshotWriter } from './source.js';
export { CaptureSource } from './capture.js';
export { StoreSource, type StoreSourceOptions } from './store.js';
export { RemoteSource, eventOf, isFlow } from './remote.js';
export { HubSource, agentAt, type HubAgent, type HubSnapshot, type HubSourceOptions } from './hub.js';
export { exchangeKey } from './hub-merge.js';
export { SourceError } from './errors.js';
export { FlowFeed } from './feed.js';
export { collectFlows } from './collect.js';
export { BodyError, readJsonBody } from './http-body.js';
export {
  allOf, badCursor, cursorAfter, cursorKey, DEFAULT_PAGE, MAX_PAGE, pageOf, predicateOf, timeOf, type FlowPage, type FlowQuery,
} from './query.js';
export { DEFAULT_MAP_WINDOW, MAX_MAP_FLOWS, mapOf, resolve, type ResolvedQuery } from './window.js';
