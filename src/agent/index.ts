/**
 * agent/: the live agent: libpcap capture (live/Recorder) → the pipeline → identities (enrich/) →
 * the flow store, served by the flow API (api/) with metrics, snapshots and standing specs.
 */
export { Agent } from './agent.js';
