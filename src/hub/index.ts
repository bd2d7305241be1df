/**
 * hub/: `tapwire hub`, the agents' API served once for a cluster: a HubSource (service/hub.ts)
 * over the agents given or discovered from their headless Service's EndpointSlices, behind the
 * same HTTP API as an agent, with the hub's and the agents' metrics.
 */
export { Hub, type HubOptions } from './hub.js';
export { agentUrls, discoverAgents, type Discovery, type DiscoveryOptions } from './discovery.js';
export { HubRegistry, relabel } from './metrics.js';
