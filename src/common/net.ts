/**
 * Binding anything but loopback exposes captured traffic, so the agent's API and the MCP server's
 * HTTP transport both demand a token there. One definition of "loopback" for both.
 */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
