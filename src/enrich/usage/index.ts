/** Filled in by issue 16's work in progress. */
export {};
