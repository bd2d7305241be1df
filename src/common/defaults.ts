/** Body bytes kept per message by default (`--body-limit`): the rest is counted, not kept. */
export const DEFAULT_BODY_LIMIT = 64 * 1024;
