/**
 * A count with its noun, singular for one: "1 flow", "3 flows", "1 UDP flow", "0 decode problems".
 * `many` is for nouns whose plural is not the singular plus "s".
 */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "http 17, postgres 12": counts by key, largest first (ties by key), as summaries list them. */
export function countsText(counts: Record<string, number>, sep = ' '): string {
  return Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([k, n]) => `${k}${sep}${n}`).join(', ');
}

/**
 * What a source saw but did not decode, in the words tapwire uses wherever it says so:
 * ["3 connections not decoded (tls 1, unknown 2)", "1 UDP flow not decoded (dns 1)"], each only
 * when there were some. `sep` goes between a reason and its count.
 */
export function notDecodedParts(c: { connections: number; byReason: Record<string, number>; udpFlows: number; udpByReason: Record<string, number>; encryptedConnections?: number; encryptedByReason?: Record<string, number> }, sep = ' '): string[] {
  const parts: string[] = [];
  if (c.connections > 0) parts.push(`${plural(c.connections, 'connection')} not decoded (${countsText(c.byReason, sep)})`);
  if (c.udpFlows > 0) parts.push(`${plural(c.udpFlows, 'UDP flow')} not decoded (${countsText(c.udpByReason, sep)})`);
  // Decoded up to encryption (a TLS handshake): the connection is known, what it carried is not.
  if (c.encryptedConnections) parts.push(`${plural(c.encryptedConnections, 'connection')} with content encrypted, handshake decoded (${countsText(c.encryptedByReason ?? {}, sep)})`);
  return parts;
}

/**
 * Text for a terminal of `width` columns: each line longer than that is broken at spaces, its
 * continuation indented under where the line's text starts (past a label column such as
 * "  ERROR   ", or two spaces in from the line's own indent), so wrapped findings stay readable
 * instead of running into the left margin. Without a width (piped output) text is left whole.
 */
export function fitToWidth(text: string, width: number | undefined): string {
  if (width === undefined || width < 40) return text;
  return text.split('\n').map((line) => (line.length <= width ? line : wrapLine(line, width))).join('\n');
}

function wrapLine(line: string, width: number): string {
  const lead = /^\s*/.exec(line)![0].length;
  const label = /^\s+\S+\s{2,}/.exec(line);
  const hang = Math.min(label ? label[0].length : lead + 2, Math.floor(width / 2));
  const out: string[] = [];
  let cur = '';
  for (const word of line.slice(lead).split(' ')) {
    const prefix = out.length === 0 && cur === '' ? ' '.repeat(lead) : '';
    const room = width - (out.length === 0 ? 0 : hang);
    if (cur !== '' && cur.length + 1 + word.length > room) {
      out.push(cur);
      cur = '';
    }
    cur = cur === '' ? `${prefix}${word}` : `${cur} ${word}`;
    // A word longer than a whole line is cut where the line ends.
    while (cur.length > width - (out.length === 0 ? 0 : hang)) {
      const r = width - (out.length === 0 ? 0 : hang);
      out.push(cur.slice(0, r));
      cur = cur.slice(r);
    }
  }
  if (cur !== '') out.push(cur);
  return out.map((l, i) => (i === 0 ? l : `${' '.repeat(hang)}${l}`)).join('\n');
}
