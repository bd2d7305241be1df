/**
 * cluster/: cluster events on the flow timeline (issue 16). Pod status changes become events on
 * every agent (pod-status.ts, fed by the identity informer's pods); Kubernetes Events are watched
 * cluster-wide by the hub, and by an agent only with --cluster-events (events.ts says why).
 */
export { podStatusEvents, podStatusListener } from './pod-status.js';
export { clusterEventOf, ClusterEventWatcher, type ClusterEventWatcherOptions, type ClusterEventWatcherStats } from './events.js';
