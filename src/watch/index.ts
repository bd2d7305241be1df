/**
 * watch/: standing specs judged over a sliding window of live flows, with verdict changes and
 * their one-line summaries.
 */
export { Watcher, type SpecState, type StandingSpec, type VerdictChange } from './watcher.js';
