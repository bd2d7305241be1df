/**
 * Binding anything but loopback exposes captured traffic, so the agent's API and the MCP server's
 * HTTP transport both demand a token there. One definition of "loopback" for both.
 */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The host name of a Host header or an Origin ("127.0.0.1:8899", "http://localhost:3000", "[::1]:80"); '' when unparsable. */
function hostnameOf(h: string): string {
  try {
    return new URL(h.includes('://') ? h : `http://${h}`).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    return '';
  }
}

/**
 * Whether a request to a loopback-bound server really comes from this machine's own clients: its
 * Host names loopback (a page that rebinds a DNS name to 127.0.0.1 sends its own name) and its
 * Origin, when a browser sends one, is loopback too (a page on another site sends its origin,
 * even for a no-cors POST). Non-browser clients send no Origin.
 */
export function isLoopbackRequest(headers: { host?: string; origin?: string }): boolean {
  return isLoopback(hostnameOf(headers.host ?? '')) && (headers.origin === undefined || isLoopback(hostnameOf(headers.origin)));
}
