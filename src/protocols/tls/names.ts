/** What flows/ may read of the TLS tables: names for versions and cipher suites, and GREASE. */
export { cipherName, isGrease, versionName } from './wire.js';
